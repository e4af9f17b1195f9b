//! The event vocabulary of events.md: canonical names, the seeds' aliases
//! (matched case-insensitively), and the order of ties inside a session.

/// A canonical event type. Anything not listed in events.md is `Other`: kept,
/// but ignored by the watch-time metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Start,
    Resume,
    Heartbeat,
    Pause,
    Seek,
    Stop,
    Complete,
    BufferStart,
    BufferEnd,
    Error,
    QualityChange,
    Other,
}

impl EventType {
    /// Maps a raw `event_type` to its canonical type.
    pub fn parse(raw: &str) -> EventType {
        let lower;
        let name = if raw.bytes().any(|b| b.is_ascii_uppercase()) || raw.starts_with(' ') || raw.ends_with(' ') {
            lower = raw.trim().to_ascii_lowercase();
            lower.as_str()
        } else {
            raw
        };
        match name {
            "start" | "play" | "video_play" | "session_start" => EventType::Start,
            "resume" | "video_resume" => EventType::Resume,
            "heartbeat" | "ping" | "progress" => EventType::Heartbeat,
            "pause" | "video_pause" => EventType::Pause,
            "seek" | "seeked" | "video_seek" => EventType::Seek,
            "stop" | "video_stop" | "session_end" | "close" => EventType::Stop,
            "complete" | "end" | "ended" | "video_end" | "video_complete" => EventType::Complete,
            "buffer_start" | "buffer" => EventType::BufferStart,
            "buffer_end" => EventType::BufferEnd,
            "error" => EventType::Error,
            "quality_change" => EventType::QualityChange,
            _ => EventType::Other,
        }
    }

    /// The canonical name written to silver; `Other` keeps the raw name
    /// (lower-cased) so nothing is lost.
    pub fn canonical_name(self) -> Option<&'static str> {
        Some(match self {
            EventType::Start => "start",
            EventType::Resume => "resume",
            EventType::Heartbeat => "heartbeat",
            EventType::Pause => "pause",
            EventType::Seek => "seek",
            EventType::Stop => "stop",
            EventType::Complete => "complete",
            EventType::BufferStart => "buffer_start",
            EventType::BufferEnd => "buffer_end",
            EventType::Error => "error",
            EventType::QualityChange => "quality_change",
            EventType::Other => return None,
        })
    }

    /// Start, resume, heartbeat, pause, seek, stop, complete: the events that
    /// drive the watched-segment state machine and need a position.
    pub fn is_playback(self) -> bool {
        matches!(
            self,
            EventType::Start | EventType::Resume | EventType::Heartbeat | EventType::Pause | EventType::Seek | EventType::Stop | EventType::Complete
        )
    }

    /// Rank for events with the same timestamp (metrics.md, Sessions):
    /// pause, stop, complete, heartbeat, seek, start, resume, then the rest.
    pub fn tie_rank(self) -> u8 {
        match self {
            EventType::Pause => 0,
            EventType::Stop => 1,
            EventType::Complete => 2,
            EventType::Heartbeat => 3,
            EventType::Seek => 4,
            EventType::Start => 5,
            EventType::Resume => 6,
            _ => 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_in_any_case_map_to_canonical_names() {
        for (raw, expected) in [
            ("play", EventType::Start),
            ("VIDEO_PLAY", EventType::Start),
            ("Session_Start", EventType::Start),
            ("video_resume", EventType::Resume),
            ("PING", EventType::Heartbeat),
            ("progress", EventType::Heartbeat),
            ("seeked", EventType::Seek),
            ("close", EventType::Stop),
            ("session_end", EventType::Stop),
            ("ended", EventType::Complete),
            ("video_complete", EventType::Complete),
            ("buffer", EventType::BufferStart),
            ("ad_impression", EventType::Other),
        ] {
            assert_eq!(EventType::parse(raw), expected, "{raw}");
        }
    }

    #[test]
    fn ties_order_closing_events_before_opening_ones() {
        let mut types = vec![EventType::Resume, EventType::Start, EventType::Pause, EventType::Heartbeat];
        types.sort_by_key(|t| t.tie_rank());
        assert_eq!(types, vec![EventType::Pause, EventType::Heartbeat, EventType::Start, EventType::Resume]);
        assert!(EventType::Seek.is_playback());
        assert!(!EventType::BufferStart.is_playback());
    }
}
