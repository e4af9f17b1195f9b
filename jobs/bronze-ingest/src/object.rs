//! One landing object to bronze rows: read it by its content (gzip by its
//! magic number, several members as one stream; plain text otherwise), drop
//! a byte-order mark, split lines, parse, and send events and rejects onward
//! in bounded batches as it goes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::Arc;

use bytes::Bytes;
use flate2::bufread::MultiGzDecoder;
use streamreel_lake::arrow::array::RecordBatch;
use streamreel_lake::rows::RowBuilder;
use streamreel_lake::{LakeError, Result};
use streamreel_tables::bronze::{EventBatchBuilder, EventRow, LandingPartition, REJECTS, RejectRow};

use crate::lines::{Line, for_each_line};
use crate::parse::{Limits, Reject, RejectReason, parse_line};

/// Rows per batch handed to the writer: large enough to amortise, small
/// enough that a few in flight stay far below the memory bound.
pub const BATCH_ROWS: usize = 16 * 1024;
const READ_BUFFER: usize = 256 * 1024;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// What the ingest needs to know to parse one object.
#[derive(Debug, Clone)]
pub struct ObjectJob {
    /// Path relative to the landing root, stored as `source_object`.
    pub name: String,
    pub partition: LandingPartition,
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
    /// Events kept with an optional field emptied, per field.
    pub invalid_fields: BTreeMap<&'static str, u64>,
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
        for (field, n) in &other.invalid_fields {
            *self.invalid_fields.entry(field).or_default() += n;
        }
    }
}

/// Parses a whole object, calling `send` with each full batch; `send`
/// returning false (the writer has gone) stops the work early. `events` is
/// empty before and after, so that it can be reused.
pub fn parse_object(job: &ObjectJob, bytes: Bytes, events: &mut EventBatchBuilder, mut send: impl FnMut(Batch) -> bool) -> Result<ObjectStats> {
    let mut stats = ObjectStats::default();
    if bytes.is_empty() {
        return Ok(stats);
    }
    let mut rejects = RowBuilder::new(&REJECTS.schema)?;
    let (landing_date, landing_hour, object_bucket) = job.partition.columns();
    let mut open = true;
    let mut failure: Option<LakeError> = None;

    let mut on_line = |line_number: u64, line: Line<'_>| {
        if !open {
            return;
        }
        let line = match line {
            Line::Complete(bytes) if line_number == 1 => Line::Complete(bytes.strip_prefix(BYTE_ORDER_MARK).unwrap_or(bytes)),
            other => other,
        };
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
                Ok(e) => {
                    for field in &e.invalid_fields {
                        *stats.invalid_fields.entry(field).or_default() += 1;
                    }
                    let t = |i: usize| e.texts[i].as_deref();
                    let row = EventRow {
                        event_id: &e.event_id,
                        customer_id: &e.customer_id,
                        title_id: &e.title_id,
                        event_type: &e.event_type,
                        event_timestamp: e.timestamp_micros,
                        position_seconds: e.position_seconds,
                        watch_duration_seconds: e.watch_duration_seconds,
                        completion_percentage: e.completion_percentage,
                        bandwidth_mbps: e.bandwidth_mbps,
                        buffering_events: e.buffering_events,
                        buffering_duration_seconds: e.buffering_duration_seconds,
                        error_count: e.error_count,
                        session_id: t(0),
                        device_type: t(1),
                        device_id: t(2),
                        device_os: t(3),
                        app_version: t(4),
                        quality: t(5),
                        ip_address: t(6),
                        country: t(7),
                        state: t(8),
                        city: t(9),
                        isp: t(10),
                        connection_type: t(11),
                        invalid_fields: &e.invalid_fields,
                        source_object: &job.name,
                        line_number: line_number as i64,
                        run_id: &job.run_id,
                        raw_line: e.line,
                        landing_date,
                        landing_hour,
                        object_bucket,
                    };
                    stats.rows += 1;
                    events.push(&row);
                    Ok(())
                }
                Err(reject) => Err((reject, bytes)),
            },
        };
        if let Err((reject, raw)) = outcome {
            *stats.rejects.entry(reject.reason.code()).or_default() += 1;
            let raw = text(raw);
            let row = RejectRow {
                source_object: &job.name,
                line_number: Some(line_number as i64),
                reason: reject.reason.code(),
                detail: &reject.detail,
                raw_line: Some(&raw),
                run_id: &job.run_id,
                landing_date,
                landing_hour,
                object_bucket,
            };
            if let Err(e) = rejects.push(&row) {
                failure.get_or_insert(e);
            }
        }
        let full = [
            (events.len() >= BATCH_ROWS).then(|| events.finish().map(Batch::Events)),
            (rejects.len() >= BATCH_ROWS).then(|| rejects.finish().map(Batch::Rejects)),
        ];
        for batch in full.into_iter().flatten() {
            match batch {
                Ok(batch) if open => open = send(batch),
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                    open = false;
                }
            }
        }
    };

    let walked = if bytes.starts_with(&GZIP_MAGIC) {
        let reader = BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(&bytes[..]));
        for_each_line(reader, job.max_line_bytes, &mut on_line)
    } else {
        for_each_line(&bytes[..], job.max_line_bytes, &mut on_line)
    };
    if let Some(e) = failure {
        return Err(e);
    }
    if let Err((lines_read, error)) = walked {
        // The complete lines before the damage were good and are kept; the
        // object itself is recorded with where and why it broke.
        let detail = format!("cannot read the object after line {lines_read}: {error}");
        *stats.rejects.entry(RejectReason::UnreadableObject.code()).or_default() += 1;
        rejects.push(&object_reject_row(job, &detail))?;
    }
    if !events.is_empty() {
        let batch = events.finish()?;
        if open {
            open = send(Batch::Events(batch));
        }
    }
    if open && !rejects.is_empty() {
        send(Batch::Rejects(rejects.finish()?));
    }
    Ok(stats)
}

fn object_reject_row<'a>(job: &'a ObjectJob, detail: &'a str) -> RejectRow<'a> {
    let (landing_date, landing_hour, object_bucket) = job.partition.columns();
    RejectRow {
        source_object: &job.name,
        line_number: None,
        reason: RejectReason::UnreadableObject.code(),
        detail,
        raw_line: None,
        run_id: &job.run_id,
        landing_date,
        landing_hour,
        object_bucket,
    }
}

/// A reject for an object that could not even be fetched.
pub fn object_reject(job: &ObjectJob, detail: &str) -> Result<RecordBatch> {
    streamreel_lake::rows::encode(&REJECTS.schema, &[object_reject_row(job, detail)])
}

/// The line as text: almost always valid UTF-8 already (checked at memory
/// speed); otherwise with replacement characters.
fn text(raw: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use streamreel_lake::arrow::array::AsArray;

    fn job() -> ObjectJob {
        let hour = chrono::DateTime::parse_from_rfc3339("2025-08-11T14:00:00Z").unwrap().with_timezone(&chrono::Utc);
        ObjectJob {
            name: "year=2025/month=08/day=11/hour=14/a.json.gz".into(),
            partition: LandingPartition::of(hour, "a", 64),
            limits: Limits { latest_micros: i64::MAX },
            max_line_bytes: 300,
            run_id: "test".into(),
        }
    }

    const GOOD: &str =
        r#"{"event_id":"e1","customer_id":"c","title_id":"t","event_type":"start","event_timestamp":"2025-08-11T14:00:00Z","position_seconds":0}"#;

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn run(bytes: impl Into<Bytes>) -> (ObjectStats, usize, Vec<String>) {
        let mut rows = 0;
        let mut reasons = Vec::new();
        let stats = parse_object(&job(), bytes.into(), &mut EventBatchBuilder::default(), |batch| {
            match batch {
                Batch::Events(b) => rows += b.num_rows(),
                Batch::Rejects(b) => reasons.extend(b.column_by_name("reason").unwrap().as_string::<i32>().iter().map(|r| r.unwrap().to_string())),
            }
            true
        })
        .unwrap();
        (stats, rows, reasons)
    }

    #[test]
    fn good_bad_blank_and_long_lines_are_all_accounted_for() {
        let text = format!("{GOOD}\nnot json\n\n{}\n{GOOD}", "x".repeat(400));
        let (stats, rows, reasons) = run(gzip(&text));
        assert_eq!((stats.lines, stats.blank_lines, stats.rows), (4, 1, 2));
        assert_eq!(rows, 2);
        assert_eq!(reasons, ["invalid_json", "line_too_long"]);
        assert_eq!(stats.rows + stats.rejected(), stats.lines);
    }

    #[test]
    fn a_truncated_gzip_keeps_what_came_before_and_records_the_object() {
        let body: String = (0..2000).map(|_| format!("{GOOD}\n")).collect();
        let full = gzip(&body);
        let (stats, rows, reasons) = run(full[..full.len() / 2].to_vec());
        assert!(rows > 0 && rows < 2000, "{rows}");
        assert_eq!(reasons.last().map(String::as_str), Some("unreadable_object"));
        assert_eq!(stats.rejects.get("unreadable_object"), Some(&1));
    }

    #[test]
    fn objects_are_read_by_content_whatever_their_name() {
        // Plain text, several gzip members, a byte-order mark, CRLF.
        let (stats, rows, reasons) = run(format!("{GOOD}\n{GOOD}\n"));
        assert_eq!((stats.rows, rows, reasons.len()), (2, 2, 0));
        let mut members = gzip(&format!("{GOOD}\n"));
        members.extend(gzip(&format!("{GOOD}\r\n{GOOD}")));
        assert_eq!(run(members).1, 3);
        let (stats, rows, _) = run(format!("\u{feff}{GOOD}\r\n"));
        assert_eq!((stats.rows, rows), (1, 1), "a byte-order mark is not part of line 1");
        let (stats, rows, reasons) = run(gzip(""));
        assert_eq!((stats.lines, rows, reasons.len()), (0, 0, 0));
        assert_eq!(run(Bytes::new()).0.lines, 0);
    }

    #[test]
    fn invalid_utf8_lines_are_rejected_with_their_reason() {
        let mut bytes = format!("{GOOD}\n").into_bytes();
        bytes.extend_from_slice(b"{\"event_id\":\"\xff\"}\n");
        let (_, rows, reasons) = run(bytes);
        assert_eq!((rows, reasons), (1, vec!["invalid_utf8".to_string()]));
    }
}
