//! The watched-segment state machine (docs/metrics.md, "Sessions" and
//! "Watched segments"): pure functions from one session's ordered events to
//! its splits, watched segments and the per-video facts gold needs.

use std::collections::BTreeSet;

use ahash::AHashMap;
use streamreel_lake::config::MetricSettings;
use streamreel_tables::EventType;

const MICROS: f64 = 1_000_000.0;

/// The fields of one clean event that sessions and segments depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionEvent<'a> {
    pub event_id: &'a str,
    pub customer_id: &'a str,
    pub title_id: &'a str,
    pub kind: EventType,
    pub timestamp_micros: i64,
    pub position_seconds: Option<f64>,
}

/// Orders events inside a session: time, then the tie rank of metrics.md,
/// then event id.
pub fn sort_events(events: &mut [SessionEvent<'_>]) {
    events.sort_by(event_order);
}

pub fn event_order(a: &SessionEvent<'_>, b: &SessionEvent<'_>) -> std::cmp::Ordering {
    a.timestamp_micros.cmp(&b.timestamp_micros).then(a.kind.tie_rank().cmp(&b.kind.tie_rank())).then_with(|| a.event_id.cmp(b.event_id))
}

/// Splits sorted events wherever two consecutive ones are more than the
/// session timeout apart; returns index ranges into `events`.
pub fn split_sessions(events: &[SessionEvent<'_>], timeout_seconds: f64) -> Vec<std::ops::Range<usize>> {
    let timeout_micros = (timeout_seconds * MICROS).round() as i64;
    let mut sessions = Vec::new();
    let mut start = 0;
    for i in 1..events.len() {
        if events[i].timestamp_micros - events[i - 1].timestamp_micros > timeout_micros {
            sessions.push(start..i);
            start = i;
        }
    }
    if !events.is_empty() {
        sessions.push(start..events.len());
    }
    sessions
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    JumpWithoutSeek,
    UnclosedPlayback,
    PositionBeyondDuration,
}

impl Flag {
    pub fn name(self) -> &'static str {
        match self {
            Flag::JumpWithoutSeek => "jump_without_seek",
            Flag::UnclosedPlayback => "unclosed_playback",
            Flag::PositionBeyondDuration => "position_beyond_duration",
        }
    }
}

/// One watched stretch of one video, after clipping.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment<'a> {
    pub customer_id: &'a str,
    pub title_id: &'a str,
    pub start_position: f64,
    pub end_position: f64,
    pub wall_start_micros: i64,
    pub wall_end_micros: i64,
    /// The event that closed the segment (its type, canonical).
    pub end_event: EventType,
    /// A skip (forward or backward) ended this segment.
    pub ends_in_skip: bool,
}

impl Segment<'_> {
    pub fn watched_seconds(&self) -> f64 {
        self.end_position - self.start_position
    }
}

/// What one session did with one video.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VideoFacts<'a> {
    pub customer_id: &'a str,
    pub title_id: &'a str,
    pub playback_events: u32,
    pub pause_count: u32,
    pub seek_count: u32,
    pub forward_skips: u32,
    pub backward_skips: u32,
    pub complete_event: bool,
    pub first_playback_micros: i64,
    pub last_playback_micros: i64,
    pub flags: BTreeSet<Flag>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionResult<'a> {
    pub segments: Vec<Segment<'a>>,
    /// In order of the video's first playback event.
    pub videos: Vec<VideoFacts<'a>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Playing,
    Paused,
}

/// Runs the state machine over one session's sorted events.
/// `duration_of` gives a title's duration in seconds when the metadata knows it.
pub fn watch_session<'a>(events: &[SessionEvent<'a>], settings: &MetricSettings, duration_of: impl Fn(&str) -> Option<f64>) -> SessionResult<'a> {
    let tolerance = settings.jump_tolerance_seconds;
    let mut result = SessionResult::default();
    // Looked up on every playback event: a fast hash.
    let mut video_index: AHashMap<&'a str, usize> = AHashMap::new();
    let mut last_position: AHashMap<&'a str, f64> = AHashMap::new();
    let mut state = State::Idle;
    // (time, position, title) of the previous playback event.
    let mut prev: Option<(i64, f64, &'a str)> = None;

    for event in events.iter().filter(|e| e.kind.is_playback()) {
        let Some(position) = event.position_seconds else { continue };
        let title = event.title_id;
        let index = *video_index.entry(title).or_insert_with(|| {
            result.videos.push(VideoFacts {
                customer_id: event.customer_id,
                title_id: event.title_id,
                first_playback_micros: event.timestamp_micros,
                ..Default::default()
            });
            result.videos.len() - 1
        });

        // Rule 1: another video ends the previous one's playback, nothing
        // counted for the pending interval; this event starts from idle.
        if let Some((_, _, prev_title)) = prev
            && prev_title != title
        {
            state = State::Idle;
            prev = None;
        }

        let mut skip: Option<bool> = None; // Some(true) forward, Some(false) backward
        match (state, prev) {
            (State::Playing, Some((t_prev, p_prev, _))) => {
                // Rule 2.
                let dt = (event.timestamp_micros - t_prev) as f64 / MICROS;
                let dp = position - p_prev;
                let explained = event.kind != EventType::Seek && dp >= 0.0 && dp <= settings.max_playback_rate * dt + tolerance;
                let (start, end) = if explained { (p_prev, position) } else { (p_prev, p_prev + dt) };
                if !explained {
                    let expected = p_prev + dt;
                    if (position - expected).abs() > tolerance {
                        skip = Some(position > expected);
                        if event.kind != EventType::Seek {
                            result.videos[index].flags.insert(Flag::JumpWithoutSeek);
                        }
                    }
                }
                let segment = clip(start, end, duration_of(title), &mut result.videos[index].flags);
                if let Some((start, end)) = segment {
                    result.segments.push(Segment {
                        customer_id: event.customer_id,
                        title_id: event.title_id,
                        start_position: start,
                        end_position: end,
                        wall_start_micros: t_prev,
                        wall_end_micros: event.timestamp_micros,
                        end_event: event.kind,
                        ends_in_skip: skip.is_some(),
                    });
                }
            }
            _ => {
                // Rule 3.
                if matches!(event.kind, EventType::Start | EventType::Resume | EventType::Seek)
                    && let Some(last) = last_position.get(title)
                    && (position - last).abs() > tolerance
                {
                    skip = Some(position > *last);
                }
            }
        }

        let facts = &mut result.videos[index];
        facts.playback_events += 1;
        facts.last_playback_micros = event.timestamp_micros;
        match event.kind {
            EventType::Pause => facts.pause_count += 1,
            EventType::Seek => facts.seek_count += 1,
            EventType::Complete => facts.complete_event = true,
            _ => {}
        }
        match skip {
            Some(true) => facts.forward_skips += 1,
            Some(false) => facts.backward_skips += 1,
            None => {}
        }

        // Rule 4.
        state = match event.kind {
            EventType::Start | EventType::Resume | EventType::Heartbeat => State::Playing,
            EventType::Pause | EventType::Stop | EventType::Complete => State::Paused,
            _ => state,
        };
        prev = Some((event.timestamp_micros, position, title));
        last_position.insert(title, position);
    }

    // Rule 5.
    if state == State::Playing
        && let Some((_, _, title)) = prev
    {
        let index = video_index[title];
        result.videos[index].flags.insert(Flag::UnclosedPlayback);
    }
    result
}

/// Clips a segment to `[0, duration]`; an empty result is no segment.
fn clip(start: f64, end: f64, duration: Option<f64>, flags: &mut BTreeSet<Flag>) -> Option<(f64, f64)> {
    let (mut s, mut e) = (start.max(0.0), end.max(0.0));
    if let Some(d) = duration {
        s = s.min(d);
        e = e.min(d);
    }
    if s != start || e != end {
        flags.insert(Flag::PositionBeyondDuration);
    }
    (e > s).then_some((s, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamreel_tables::intervals::union_length;

    fn ev<'a>(id: &'a str, title: &'a str, kind: EventType, seconds: f64, position: f64) -> SessionEvent<'a> {
        SessionEvent {
            event_id: id,
            customer_id: "peter",
            title_id: title,
            kind,
            timestamp_micros: (seconds * MICROS) as i64,
            position_seconds: Some(position),
        }
    }

    fn run<'a>(events: &[SessionEvent<'a>]) -> SessionResult<'a> {
        watch_session(events, &MetricSettings::default(), |t| (t == "video_001").then_some(300.0).or(if t == "long" { Some(10_000.0) } else { None }))
    }

    fn spans(result: &SessionResult) -> Vec<(f64, f64)> {
        result.segments.iter().map(|s| (s.start_position, s.end_position)).collect()
    }

    #[test]
    fn the_worked_example_of_metrics_md() {
        use EventType::*;
        let events = [
            ev("1", "video_001", Start, 0.0, 0.0),
            ev("2", "video_001", Pause, 30.0, 30.0),
            ev("3", "video_001", Resume, 35.0, 30.0),
            ev("4", "video_001", Pause, 125.0, 120.0),
            ev("5", "video_001", Resume, 130.0, 110.0),
            ev("6", "video_001", Pause, 140.0, 120.0),
        ];
        let result = run(&events);
        assert_eq!(spans(&result), vec![(0.0, 30.0), (30.0, 120.0), (110.0, 120.0)]);
        let total: f64 = result.segments.iter().map(Segment::watched_seconds).sum();
        assert_eq!(total, 130.0);
        let mut intervals = spans(&result);
        assert_eq!(union_length(&mut intervals), 120.0);
        let facts = &result.videos[0];
        assert_eq!((facts.pause_count, facts.backward_skips, facts.forward_skips), (3, 1, 0));
        assert!(facts.flags.is_empty());
    }

    #[test]
    fn seek_while_playing_counts_normal_speed_until_the_jump() {
        use EventType::*;
        let result = run(&[ev("1", "long", Start, 0.0, 100.0), ev("2", "long", Seek, 10.0, 500.0), ev("3", "long", Pause, 20.0, 510.0)]);
        assert_eq!(spans(&result), vec![(100.0, 110.0), (500.0, 510.0)]);
        assert_eq!((result.videos[0].forward_skips, result.videos[0].seek_count), (1, 1));
        assert!(result.videos[0].flags.is_empty());
    }

    #[test]
    fn jump_without_seek_is_flagged_and_double_speed_is_not_a_jump() {
        use EventType::*;
        let fast = run(&[ev("1", "long", Start, 0.0, 0.0), ev("2", "long", Heartbeat, 30.0, 60.0), ev("3", "long", Pause, 60.0, 121.0)]);
        assert_eq!(spans(&fast), vec![(0.0, 60.0), (60.0, 121.0)]);
        assert!(fast.videos[0].flags.is_empty());
        let jump = run(&[ev("1", "long", Start, 0.0, 0.0), ev("2", "long", Heartbeat, 30.0, 400.0), ev("3", "long", Stop, 40.0, 410.0)]);
        assert_eq!(spans(&jump), vec![(0.0, 30.0), (400.0, 410.0)]);
        assert!(jump.videos[0].flags.contains(&Flag::JumpWithoutSeek));
        assert_eq!(jump.videos[0].forward_skips, 1);
    }

    #[test]
    fn seek_while_paused_is_a_skip_and_counts_nothing() {
        use EventType::*;
        let result = run(&[
            ev("1", "long", Start, 0.0, 0.0),
            ev("2", "long", Pause, 10.0, 10.0),
            ev("3", "long", Seek, 20.0, 300.0),
            ev("4", "long", Resume, 30.0, 300.0),
            ev("5", "long", Stop, 40.0, 310.0),
        ]);
        assert_eq!(spans(&result), vec![(0.0, 10.0), (300.0, 310.0)]);
        assert_eq!(result.videos[0].forward_skips, 1, "the seek skipped; the resume did not");
    }

    #[test]
    fn unclosed_playback_counts_nothing_after_the_last_event() {
        use EventType::*;
        let result = run(&[ev("1", "long", Start, 0.0, 0.0), ev("2", "long", Heartbeat, 30.0, 30.0)]);
        assert_eq!(spans(&result), vec![(0.0, 30.0)]);
        assert!(result.videos[0].flags.contains(&Flag::UnclosedPlayback));
    }

    #[test]
    fn switching_video_drops_the_pending_interval() {
        use EventType::*;
        let result = run(&[ev("1", "long", Start, 0.0, 0.0), ev("2", "video_001", Start, 30.0, 0.0), ev("3", "video_001", Pause, 40.0, 10.0)]);
        assert_eq!(spans(&result), vec![(0.0, 10.0)]);
        assert_eq!(result.segments[0].title_id, "video_001");
        assert_eq!(result.videos.len(), 2);
        assert!(!result.videos[0].flags.contains(&Flag::UnclosedPlayback));
    }

    #[test]
    fn positions_past_the_duration_are_clipped_and_flagged() {
        use EventType::*;
        let result = run(&[ev("1", "video_001", Start, 0.0, 290.0), ev("2", "video_001", Complete, 20.0, 310.0)]);
        assert_eq!(spans(&result), vec![(290.0, 300.0)]);
        assert!(result.videos[0].flags.contains(&Flag::PositionBeyondDuration));
        assert!(result.videos[0].complete_event);
    }

    #[test]
    fn ties_on_the_same_timestamp_close_before_they_open() {
        use EventType::*;
        let mut events = vec![
            ev("b", "long", Resume, 10.0, 10.0),
            ev("a", "long", Pause, 10.0, 10.0),
            ev("0", "long", Start, 0.0, 0.0),
            ev("c", "long", Pause, 20.0, 20.0),
        ];
        sort_events(&mut events);
        let kinds: Vec<EventType> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![Start, Pause, Resume, Pause]);
        assert_eq!(spans(&run(&events)), vec![(0.0, 10.0), (10.0, 20.0)]);
    }

    #[test]
    fn sessions_split_on_gaps_longer_than_the_timeout() {
        use EventType::*;
        let events = [ev("1", "long", Start, 0.0, 0.0), ev("2", "long", Pause, 1800.0, 10.0), ev("3", "long", Resume, 3601.0, 10.0)];
        let sessions = split_sessions(&events, 1800.0);
        assert_eq!(sessions, vec![0..2, 2..3]);
    }
}
