//! Recomputes the sessions a window touched: groups events by session key,
//! splits them into sessions, runs the segment state machine, and builds the
//! `watch_segments` and `watch_sessions` rows.

use std::collections::BTreeMap;

use ahash::AHashSet;
use std::sync::Arc;

use streamreel_lake::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use streamreel_lake::config::MetricSettings;

use streamreel_lake::delta::day_of as day;

use crate::enrich::Metadata;
use crate::rows::{EventColumns, RowRef, text_at};
use crate::schema::{SEGMENTS_SCHEMA, SESSIONS_SCHEMA};
use crate::segments::{Segment, SessionEvent, event_order, merge_intervals, split_sessions, watch_session};

/// The recomputed sessions of one run.
#[derive(Default)]
pub struct Recomputed {
    pub segments: Vec<RecordBatch>,
    pub sessions: Vec<RecordBatch>,
    /// Per session key, the `[start, end]` (µs) of every recomputed session:
    /// older rows of the key that start inside one of these are replaced.
    pub spans: BTreeMap<String, Vec<(i64, i64)>>,
    pub session_count: usize,
    /// A touched session reaches the edge of the events read: read more.
    pub needs_earlier: bool,
    pub needs_later: bool,
}

impl Recomputed {
    /// One result from those of disjoint sets of session keys.
    pub fn merge(parts: Vec<Recomputed>) -> Recomputed {
        let mut all = Recomputed::default();
        for part in parts {
            all.segments.extend(part.segments);
            all.sessions.extend(part.sessions);
            all.spans.extend(part.spans);
            all.session_count += part.session_count;
            all.needs_earlier |= part.needs_earlier;
            all.needs_later |= part.needs_later;
        }
        all
    }
}

/// Session-level facts: the first known dimension values and the last
/// running totals (events.md: `buffering_*` and `error_count` are totals).
#[derive(Default)]
struct Qos<'a> {
    device_type: Option<&'a str>,
    country: Option<&'a str>,
    isp: Option<&'a str>,
    quality: Option<&'a str>,
    buffering_events: Option<i64>,
    buffering_seconds: Option<f64>,
    error_count: Option<i64>,
    bandwidth_sum: f64,
    bandwidth_count: u32,
}

impl<'a> Qos<'a> {
    fn observe(&mut self, c: &EventColumns<'a>, row: usize) {
        use streamreel_lake::arrow::array::Array;
        self.device_type = self.device_type.or(text_at(c.device_type, row));
        self.country = self.country.or(text_at(c.country, row));
        self.isp = self.isp.or(text_at(c.isp, row));
        self.quality = self.quality.or(text_at(c.quality, row));
        if c.buffering_events.is_valid(row) {
            self.buffering_events = Some(c.buffering_events.value(row));
        }
        if c.buffering_seconds.is_valid(row) {
            self.buffering_seconds = Some(c.buffering_seconds.value(row));
        }
        if c.error_count.is_valid(row) {
            self.error_count = Some(c.error_count.value(row));
        }
        if c.bandwidth.is_valid(row) {
            self.bandwidth_sum += c.bandwidth.value(row);
            self.bandwidth_count += 1;
        }
    }
}

/// Recomputes every session of `rows_by_key` that holds an event of this
/// window (`window_ids`). `read_range` is the time range (µs) of the events
/// that were read; a touched session within one timeout of its edges may go
/// on beyond it, which `needs_earlier` / `needs_later` report.
pub fn recompute<'a>(
    columns: &[EventColumns<'a>],
    rows_by_key: &[(&'a str, Vec<RowRef>)],
    window_ids: &AHashSet<&str>,
    settings: &MetricSettings,
    metadata: &Metadata,
    read_range: (i64, i64),
) -> Recomputed {
    let timeout_micros = (settings.session_timeout_seconds * 1e6) as i64;
    let mut out = Recomputed::default();
    let mut segments = SegmentRows::default();
    let mut sessions = SessionRows::default();
    let mut events: Vec<(SessionEvent<'a>, RowRef)> = Vec::new();
    let mut ordered: Vec<SessionEvent<'a>> = Vec::new();
    let mut refs: Vec<RowRef> = Vec::new();
    for (key, rows) in rows_by_key {
        let key = *key;
        events.clear();
        events.extend(rows.iter().map(|&(b, r)| (columns[b as usize].session_event(r as usize), (b, r))));
        events.sort_by(|x, y| event_order(&x.0, &y.0));
        ordered.clear();
        ordered.extend(events.iter().map(|(e, _)| e.clone()));
        refs.clear();
        refs.extend(events.iter().map(|(_, r)| *r));

        for range in split_sessions(&ordered, settings.session_timeout_seconds) {
            let session = &ordered[range.clone()];
            if !session.iter().any(|e| window_ids.contains(e.event_id)) {
                continue;
            }
            let (start, end) = (session[0].timestamp_micros, session[session.len() - 1].timestamp_micros);
            out.needs_earlier |= start - timeout_micros <= read_range.0;
            out.needs_later |= end + timeout_micros >= read_range.1;
            out.spans.entry(key.to_string()).or_default().push((start, end));
            out.session_count += 1;

            let mut qos = Qos::default();
            for &(b, r) in &refs[range.clone()] {
                qos.observe(&columns[b as usize], r as usize);
            }
            let result = watch_session(session, settings, |t| metadata.duration(t));
            let session_watched: f64 = result.segments.iter().map(Segment::watched_seconds).sum();
            for (index, segment) in result.segments.iter().enumerate() {
                segments.push(key, start, index, segment, metadata.duration(segment.title_id), &qos);
            }
            for video in &result.videos {
                let duration = metadata.duration(video.title_id);
                let mine = result.segments.iter().filter(|s| s.title_id == video.title_id);
                let watched: f64 = mine.clone().map(Segment::watched_seconds).sum();
                let max_position = mine.clone().map(|s| s.end_position).fold(0.0, f64::max);
                let reached_end = duration.is_some_and(|d| mine.clone().any(|s| s.end_position >= settings.completion_threshold * d));
                let mut positions: Vec<(f64, f64)> = mine.clone().map(|s| (s.start_position, s.end_position)).collect();
                let mut walls: Vec<(f64, f64)> = mine.clone().map(|s| (s.wall_start_micros as f64, s.wall_end_micros as f64)).collect();
                let watched_intervals = merge_intervals(&mut positions);
                let playing_intervals: Vec<(i64, i64)> = merge_intervals(&mut walls).into_iter().map(|(a, b)| (a as i64, b as i64)).collect();
                let mut flags: Vec<&str> = video.flags.iter().map(|f| f.name()).collect();
                if !metadata.videos.contains_key(video.title_id) {
                    flags.push("missing_metadata");
                }
                sessions.push(SessionRow {
                    key,
                    start,
                    end,
                    video,
                    completed: video.complete_event || reached_end,
                    watched,
                    max_position,
                    duration,
                    flags,
                    qos: &qos,
                    session_watched,
                    watched_intervals,
                    playing_intervals,
                });
            }
        }
    }
    out.segments.push(segments.finish());
    out.sessions.push(sessions.finish());
    out
}


fn utc() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

struct SegmentRows {
    customer: StringBuilder,
    title: StringBuilder,
    key: StringBuilder,
    session_start: TimestampMicrosecondBuilder,
    index: Int64Builder,
    start: Float64Builder,
    end: Float64Builder,
    watched: Float64Builder,
    wall_start: TimestampMicrosecondBuilder,
    wall_end: TimestampMicrosecondBuilder,
    end_event: StringBuilder,
    ends_in_skip: BooleanBuilder,
    duration: Float64Builder,
    device_type: StringBuilder,
    country: StringBuilder,
    isp: StringBuilder,
    quality: StringBuilder,
    date: Date32Builder,
}

impl Default for SegmentRows {
    fn default() -> Self {
        SegmentRows {
            customer: StringBuilder::new(),
            title: StringBuilder::new(),
            key: StringBuilder::new(),
            session_start: utc(),
            index: Int64Builder::new(),
            start: Float64Builder::new(),
            end: Float64Builder::new(),
            watched: Float64Builder::new(),
            wall_start: utc(),
            wall_end: utc(),
            end_event: StringBuilder::new(),
            ends_in_skip: BooleanBuilder::new(),
            duration: Float64Builder::new(),
            device_type: StringBuilder::new(),
            country: StringBuilder::new(),
            isp: StringBuilder::new(),
            quality: StringBuilder::new(),
            date: Date32Builder::new(),
        }
    }
}

impl SegmentRows {
    fn push(&mut self, key: &str, session_start: i64, index: usize, s: &Segment<'_>, duration: Option<f64>, qos: &Qos<'_>) {
        self.customer.append_value(s.customer_id);
        self.title.append_value(s.title_id);
        self.key.append_value(key);
        self.session_start.append_value(session_start);
        self.index.append_value(index as i64);
        self.start.append_value(s.start_position);
        self.end.append_value(s.end_position);
        self.watched.append_value(s.watched_seconds());
        self.wall_start.append_value(s.wall_start_micros);
        self.wall_end.append_value(s.wall_end_micros);
        self.end_event.append_value(s.end_event.canonical_name().unwrap_or("other"));
        self.ends_in_skip.append_value(s.ends_in_skip);
        self.duration.append_option(duration);
        self.device_type.append_option(qos.device_type);
        self.country.append_option(qos.country);
        self.isp.append_option(qos.isp);
        self.quality.append_option(qos.quality);
        self.date.append_value(day(s.wall_start_micros));
    }

    fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.customer.finish()),
            Arc::new(self.title.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.session_start.finish()),
            Arc::new(self.index.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.watched.finish()),
            Arc::new(self.wall_start.finish()),
            Arc::new(self.wall_end.finish()),
            Arc::new(self.end_event.finish()),
            Arc::new(self.ends_in_skip.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.device_type.finish()),
            Arc::new(self.country.finish()),
            Arc::new(self.isp.finish()),
            Arc::new(self.quality.finish()),
            Arc::new(self.date.finish()),
        ];
        RecordBatch::try_new(SEGMENTS_SCHEMA.clone(), columns).expect("segment columns match the schema")
    }
}

struct SessionRow<'r, 'a> {
    key: &'r str,
    start: i64,
    end: i64,
    video: &'r crate::segments::VideoFacts<'a>,
    completed: bool,
    watched: f64,
    max_position: f64,
    duration: Option<f64>,
    flags: Vec<&'r str>,
    qos: &'r Qos<'a>,
    session_watched: f64,
    watched_intervals: Vec<(f64, f64)>,
    playing_intervals: Vec<(i64, i64)>,
}

struct SessionRows {
    customer: StringBuilder,
    title: StringBuilder,
    key: StringBuilder,
    start: TimestampMicrosecondBuilder,
    end: TimestampMicrosecondBuilder,
    first: TimestampMicrosecondBuilder,
    last: TimestampMicrosecondBuilder,
    counts: [Int64Builder; 5],
    complete_event: BooleanBuilder,
    completed: BooleanBuilder,
    watched: Float64Builder,
    max_position: Float64Builder,
    duration: Float64Builder,
    flags: ListBuilder<StringBuilder>,
    dims: [StringBuilder; 4],
    buffering_events: Int64Builder,
    buffering_seconds: Float64Builder,
    errors: Int64Builder,
    bandwidth: Float64Builder,
    session_watched: Float64Builder,
    watched_intervals: ListBuilder<Float64Builder>,
    playing_intervals: ListBuilder<Int64Builder>,
    date: Date32Builder,
}

impl Default for SessionRows {
    fn default() -> Self {
        SessionRows {
            customer: StringBuilder::new(),
            title: StringBuilder::new(),
            key: StringBuilder::new(),
            start: utc(),
            end: utc(),
            first: utc(),
            last: utc(),
            counts: std::array::from_fn(|_| Int64Builder::new()),
            complete_event: BooleanBuilder::new(),
            completed: BooleanBuilder::new(),
            watched: Float64Builder::new(),
            max_position: Float64Builder::new(),
            duration: Float64Builder::new(),
            flags: ListBuilder::new(StringBuilder::new()),
            dims: std::array::from_fn(|_| StringBuilder::new()),
            buffering_events: Int64Builder::new(),
            buffering_seconds: Float64Builder::new(),
            errors: Int64Builder::new(),
            bandwidth: Float64Builder::new(),
            session_watched: Float64Builder::new(),
            watched_intervals: ListBuilder::new(Float64Builder::new()),
            playing_intervals: ListBuilder::new(Int64Builder::new()),
            date: Date32Builder::new(),
        }
    }
}

impl SessionRows {
    fn push(&mut self, row: SessionRow<'_, '_>) {
        let v = row.video;
        self.customer.append_value(v.customer_id);
        self.title.append_value(v.title_id);
        self.key.append_value(row.key);
        self.start.append_value(row.start);
        self.end.append_value(row.end);
        self.first.append_value(v.first_playback_micros);
        self.last.append_value(v.last_playback_micros);
        for (builder, value) in self.counts.iter_mut().zip([v.playback_events, v.pause_count, v.seek_count, v.forward_skips, v.backward_skips]) {
            builder.append_value(value as i64);
        }
        self.complete_event.append_value(v.complete_event);
        self.completed.append_value(row.completed);
        self.watched.append_value(row.watched);
        self.max_position.append_value(row.max_position);
        self.duration.append_option(row.duration);
        for flag in &row.flags {
            self.flags.values().append_value(flag);
        }
        self.flags.append(true);
        let q = row.qos;
        for (builder, value) in self.dims.iter_mut().zip([q.device_type, q.country, q.isp, q.quality]) {
            builder.append_option(value);
        }
        self.buffering_events.append_option(q.buffering_events);
        self.buffering_seconds.append_option(q.buffering_seconds);
        self.errors.append_option(q.error_count);
        self.bandwidth.append_option((q.bandwidth_count > 0).then(|| q.bandwidth_sum / q.bandwidth_count as f64));
        self.session_watched.append_value(row.session_watched);
        for (a, b) in &row.watched_intervals {
            self.watched_intervals.values().append_slice(&[*a, *b]);
        }
        self.watched_intervals.append(true);
        for (a, b) in &row.playing_intervals {
            self.playing_intervals.values().append_slice(&[*a, *b]);
        }
        self.playing_intervals.append(true);
        self.date.append_value(day(row.start));
    }

    fn finish(mut self) -> RecordBatch {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.customer.finish()),
            Arc::new(self.title.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.first.finish()),
            Arc::new(self.last.finish()),
        ];
        columns.extend(self.counts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend([
            Arc::new(self.complete_event.finish()) as ArrayRef,
            Arc::new(self.completed.finish()),
            Arc::new(self.watched.finish()),
            Arc::new(self.max_position.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.flags.finish()),
        ]);
        columns.extend(self.dims.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend([
            Arc::new(self.buffering_events.finish()) as ArrayRef,
            Arc::new(self.buffering_seconds.finish()),
            Arc::new(self.errors.finish()),
            Arc::new(self.bandwidth.finish()),
            Arc::new(self.session_watched.finish()),
            Arc::new(self.watched_intervals.finish()),
            Arc::new(self.playing_intervals.finish()),
            Arc::new(self.date.finish()),
        ]);
        RecordBatch::try_new(SESSIONS_SCHEMA.clone(), columns).expect("session columns match the schema")
    }
}
