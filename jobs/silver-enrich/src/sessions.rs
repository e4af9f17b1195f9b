//! Recomputes the sessions a run touches, one session identity (customer,
//! session key) at a time, as a pure function of its events. The region to
//! replace starts at the times of events that came or went and is closed
//! over every session, old or new, that overlaps it: old rows whose session
//! moved or split are replaced too, and nothing outside the region changes.

use streamreel_lake::config::MetricSettings;
use streamreel_lake::rows::positive_zero;
use streamreel_lake::time::{MICROS_PER_HOUR, day_of};
use streamreel_tables::Metadata;
use streamreel_tables::intervals::{flatten, merge_intervals};
use streamreel_tables::silver::{SegmentBatchBuilder, SegmentRow, SessionRow};

use crate::columns::{EventColumns, RowRef, text_at};
use crate::segments::{Segment, SessionEvent, split_sessions, watch_session};

/// One session identity's part of a run.
pub struct KeyWork<'a> {
    pub customer_id: &'a str,
    pub session_key: &'a str,
    /// Its events within `read`, in session order (time, tie rank, id).
    pub events: Vec<(SessionEvent<'a>, RowRef)>,
    /// The time range whose events were all read.
    pub read: (i64, i64),
    /// Times where events came or went.
    pub seeds: Vec<(i64, i64)>,
    /// (start, end) of the session rows stored now.
    pub old: Vec<(i64, i64)>,
}

#[derive(Debug, Default)]
pub struct Recomputed {
    /// Stored rows of the identity that start inside it are replaced.
    pub region: Vec<(i64, i64)>,
    pub sessions: Vec<SessionRow>,
    pub session_count: usize,
}

/// How far a widening reads beyond what a session needs, so that one more
/// read usually settles it.
const WIDEN_MARGIN: i64 = 4 * MICROS_PER_HOUR;

/// An identity's events in sessions, and the region to replace: what the
/// reach check looks at before any identity is recomputed from it.
pub struct Split<'a> {
    ordered: Vec<SessionEvent<'a>>,
    splits: Vec<std::ops::Range<usize>>,
    spans: Vec<(i64, i64)>,
    region: Vec<(i64, i64)>,
    /// The region reaches what was not read: read this range and try again.
    pub widen: Option<(i64, i64)>,
}

pub fn split<'a>(work: &KeyWork<'a>, settings: &MetricSettings) -> Split<'a> {
    let timeout = (settings.session_timeout_seconds * 1e6).round() as i64;
    let ordered: Vec<SessionEvent<'_>> = work.events.iter().map(|(e, _)| e.clone()).collect();
    let splits = split_sessions(&ordered, settings.session_timeout_seconds);
    let spans: Vec<(i64, i64)> = splits.iter().map(|r| (ordered[r.start].timestamp_micros, ordered[r.end - 1].timestamp_micros)).collect();

    let mut region = merge(&work.seeds);
    loop {
        let mut grown = region.clone();
        for &span in spans.iter().chain(&work.old) {
            if overlaps(&grown, span) {
                grown.push(span);
                grown = merge(&grown);
            }
        }
        if grown == region {
            break;
        }
        region = grown;
    }

    let (mut lo, mut hi) = work.read;
    for &(start, end) in spans.iter().filter(|s| overlaps(&region, **s)) {
        if start - timeout <= work.read.0 {
            lo = lo.min(start - timeout - WIDEN_MARGIN);
        }
        if end + timeout >= work.read.1 {
            hi = hi.max(end + timeout + WIDEN_MARGIN);
        }
    }
    for &(start, end) in work.old.iter().filter(|s| overlaps(&region, **s)) {
        if start - timeout <= work.read.0 {
            lo = lo.min(start - timeout - WIDEN_MARGIN);
        }
        if end + timeout >= work.read.1 {
            hi = hi.max(end + timeout + WIDEN_MARGIN);
        }
    }
    Split { ordered, splits, spans, region, widen: ((lo, hi) != work.read).then_some((lo, hi)) }
}

/// The identity's sessions inside its region, from its events as `split`
/// found them, its segments appended to `segments`; only for a split whose
/// region needs nothing more read (`widen` is none).
pub fn recompute_key(
    columns: &[EventColumns<'_>],
    work: &KeyWork<'_>,
    split: &Split<'_>,
    settings: &MetricSettings,
    metadata: &Metadata,
    bucket: u32,
    segments: &mut SegmentBatchBuilder,
) -> Recomputed {
    let Split { ordered, splits, spans, region, .. } = split;
    let mut out = Recomputed { region: region.clone(), ..Default::default() };
    for (range, &(start, end)) in splits.iter().zip(spans) {
        if !overlaps(&out.region, (start, end)) {
            continue;
        }
        out.session_count += 1;
        let mut qos = Qos::default();
        for (_, (b, r)) in &work.events[range.clone()] {
            qos.observe(&columns[*b as usize], *r as usize);
        }
        let session = &ordered[range.clone()];
        let result = watch_session(session, settings, |t| metadata.duration(t));
        let session_watched: f64 = result.segments.iter().map(Segment::watched_seconds).sum();
        let (event_date, customer_bucket) = (day_of(start), bucket as i32);
        for (index, s) in result.segments.iter().enumerate() {
            segments.push(&SegmentRow {
                customer_id: work.customer_id,
                title_id: s.title_id,
                session_key: work.session_key,
                session_start: start,
                segment_index: index as i64,
                start_position: s.start_position,
                end_position: s.end_position,
                watched_seconds: s.watched_seconds(),
                wall_start: s.wall_start_micros,
                wall_end: s.wall_end_micros,
                end_event_type: s.end_event.canonical_name().unwrap_or("other"),
                ends_in_skip: s.ends_in_skip,
                duration_seconds: metadata.duration(s.title_id),
                device_type: qos.device_type,
                country: qos.country,
                isp: qos.isp,
                quality: qos.quality,
                event_date,
                customer_bucket,
            });
        }
        let text = |v: Option<&str>| v.map(str::to_string);
        for video in &result.videos {
            let duration = metadata.duration(video.title_id);
            let mine: Vec<&Segment<'_>> = result.segments.iter().filter(|s| s.title_id == video.title_id).collect();
            let watched: f64 = mine.iter().map(|s| s.watched_seconds()).sum();
            let max_position = mine.iter().map(|s| s.end_position).fold(0.0, f64::max);
            let reached_end = duration.is_some_and(|d| mine.iter().any(|s| s.end_position >= settings.completion_threshold * d));
            let mut positions: Vec<(f64, f64)> = mine.iter().map(|s| (s.start_position, s.end_position)).collect();
            let mut walls: Vec<(f64, f64)> = mine.iter().map(|s| (s.wall_start_micros as f64, s.wall_end_micros as f64)).collect();
            let mut flags: Vec<String> = video.flags.iter().map(|f| f.name().to_string()).collect();
            if !metadata.contains(video.title_id) {
                flags.push(crate::enrich::MISSING_METADATA.to_string());
            }
            out.sessions.push(SessionRow {
                customer_id: work.customer_id.to_string(),
                title_id: video.title_id.to_string(),
                session_key: work.session_key.to_string(),
                session_start: start,
                session_end: end,
                first_playback_at: video.first_playback_micros,
                last_playback_at: video.last_playback_micros,
                playback_events: video.playback_events as i64,
                pause_count: video.pause_count as i64,
                seek_count: video.seek_count as i64,
                forward_skips: video.forward_skips as i64,
                backward_skips: video.backward_skips as i64,
                complete_event: video.complete_event,
                completed: video.complete_event || reached_end,
                watched_seconds: positive_zero(watched),
                max_position_seconds: max_position,
                duration_seconds: duration,
                quality_flags: flags,
                device_type: text(qos.device_type),
                country: text(qos.country),
                isp: text(qos.isp),
                quality: text(qos.quality),
                session_buffering_events: qos.buffering_events,
                session_buffering_seconds: qos.buffering_seconds,
                session_error_count: qos.error_count,
                session_avg_bandwidth_mbps: (qos.bandwidth_count > 0).then(|| qos.bandwidth_sum / qos.bandwidth_count as f64),
                session_watched_seconds: positive_zero(session_watched),
                watched_intervals: flatten(&merge_intervals(&mut positions)),
                playing_intervals: merge_intervals(&mut walls).into_iter().flat_map(|(a, b)| [a as i64, b as i64]).collect(),
                event_date,
                customer_bucket,
            });
        }
    }
    out
}

fn overlaps(region: &[(i64, i64)], (start, end): (i64, i64)) -> bool {
    region.iter().any(|&(a, b)| start <= b && a <= end)
}

/// Sorted, disjoint union of closed intervals (touching ones merge).
pub fn merge(intervals: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut sorted = intervals.to_vec();
    sorted.sort();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(sorted.len());
    for (a, b) in sorted {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// Session-level facts: the first known dimension values and the last
/// running totals (`buffering_*` and `error_count` are running totals).
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

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000_000;

    fn work(times: &[i64], read: (i64, i64), seed: i64, old: Vec<(i64, i64)>) -> KeyWork<'static> {
        let events = times
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let event = SessionEvent {
                    event_id: ["e0", "e1", "e2", "e3", "e4", "e5"][i],
                    customer_id: "c",
                    title_id: "t",
                    kind: streamreel_tables::EventType::Heartbeat,
                    timestamp_micros: t,
                    position_seconds: Some(i as f64),
                };
                (event, (0, i as u32))
            })
            .collect();
        KeyWork { customer_id: "c", session_key: "k", events, read, seeds: vec![(seed, seed)], old }
    }

    #[test]
    fn a_session_inside_what_was_read_needs_nothing_more() {
        let settings = MetricSettings::default();
        let timeout = (settings.session_timeout_seconds * 1e6) as i64;
        let read = (0, 600 * MINUTE);
        let inside = split(&work(&[200 * MINUTE, 201 * MINUTE, 203 * MINUTE], read, 201 * MINUTE, vec![]), &settings);
        assert_eq!(inside.widen, None);
        assert_eq!(inside.region, vec![(200 * MINUTE, 203 * MINUTE)]);
        // Its last event within a timeout of the read's end: the session may go on unseen.
        let late = split(&work(&[580 * MINUTE, 600 * MINUTE - timeout / 2], read, 580 * MINUTE, vec![]), &settings);
        let (lo, hi) = late.widen.expect("the session may continue after what was read");
        assert_eq!(lo, read.0);
        assert!(hi > read.1 && hi >= 600 * MINUTE - timeout / 2 + timeout);
    }

    #[test]
    fn a_session_or_stored_row_at_the_edge_of_what_was_read_widens_the_read() {
        let settings = MetricSettings::default();
        let read = (100 * MINUTE, 600 * MINUTE);
        // The first event read is right after the read's start: earlier events may belong to its session.
        let early = split(&work(&[101 * MINUTE, 102 * MINUTE], read, 102 * MINUTE, vec![]), &settings);
        let (lo, hi) = early.widen.expect("the session may have started before what was read");
        assert!(lo < read.0 && hi == read.1);
        // A stored session overlapping the region and starting before the read widens it too.
        let stored = split(&work(&[300 * MINUTE], read, 300 * MINUTE, vec![(50 * MINUTE, 300 * MINUTE)]), &settings);
        let (lo, _) = stored.widen.expect("the stored session reaches before what was read");
        assert!(lo < 50 * MINUTE);
        assert_eq!(stored.region, vec![(50 * MINUTE, 300 * MINUTE)]);
    }

    #[test]
    fn intervals_merge_when_they_touch() {
        assert_eq!(merge(&[(5, 9), (0, 2), (2, 3), (20, 30)]), vec![(0, 3), (5, 9), (20, 30)]);
        assert!(overlaps(&[(0, 10)], (10, 20)) && !overlaps(&[(0, 10)], (11, 20)));
    }
}
