//! Events as JSON lines, and the kinds of broken line real players send.

use std::fmt::Write;

use rand::Rng;
use rand_pcg::Pcg64Mcg;

use crate::session::SimEvent;

/// The event as one JSON line; `bad_optional` (0 to 4) gives one optional
/// field a value it cannot hold.
pub fn event_line(e: &SimEvent<'_>, bad_optional: Option<u8>, out: &mut String) {
    let (title_id, duration) = match e.title {
        Some(t) => (t.id.as_str(), t.duration),
        None => ("TITLE_UNKNOWN", 0.0),
    };
    let completion = if duration > 0.0 { (e.position / duration * 1000.0).round() / 10.0 } else { 0.0 };
    let c = e.customer;
    let _ = write!(out, "{{\"event_id\":\"{}\",\"customer_id\":\"{}\",\"title_id\":\"{}\",", e.event_id, c.id, title_id);
    if let Some(session) = &e.session_id {
        let _ = write!(out, "\"session_id\":\"{session}\",");
    }
    let _ = write!(
        out,
        "\"event_type\":\"{}\",\"event_timestamp\":\"{}\",\"position_seconds\":{},\"watch_duration_seconds\":{},\"completion_percentage\":{},",
        e.event_type,
        e.time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        e.position,
        e.watched,
        completion.min(100.0)
    );
    let _ = write!(
        out,
        "\"device_type\":\"{}\",\"device_id\":\"{}\",\"device_os\":\"{}\",\"app_version\":\"{}\",\"quality\":\"{}\",\"bandwidth_mbps\":{},",
        e.device.kind, e.device.id, e.device.os, e.device.app_version, e.quality, e.bandwidth
    );
    let _ = writeln!(
        out,
        "\"buffering_events\":{},\"buffering_duration_seconds\":{},\"error_count\":{},\"ip_address\":\"{}\",\"country\":\"{}\",\"state\":\"{}\",\"city\":\"{}\",\"isp\":\"{}\",\"connection_type\":\"{}\"}}",
        e.buffering_events, e.buffering_seconds, e.errors, c.ip, c.country, c.state, c.city, c.isp, c.connection
    );
    let (key, value) = match bad_optional {
        None => return,
        Some(0) => ("bandwidth_mbps", "\"N/A\""),
        Some(1) => ("completion_percentage", "140"),
        Some(2) => ("watch_duration_seconds", "-5"),
        Some(3) => ("error_count", "1.5"),
        Some(_) => ("device_type", "{\"kind\":\"tv\"}"),
    };
    replace_value(out, key, value);
}

/// Replaces the value of `key` in a flat JSON object line.
fn replace_value(line: &mut String, key: &str, value: &str) {
    let Some(at) = line.find(&format!("\"{key}\":")) else { return };
    let start = at + key.len() + 3;
    let end = if line[start..].starts_with('"') {
        start + 1 + line[start + 1..].find('"').map_or(0, |i| i + 1)
    } else {
        start + line[start..].find([',', '}']).unwrap_or(0)
    };
    line.replace_range(start..end, value);
}

/// A line bronze must reject, in one of the ways events.md lists.
pub fn bad_line(rng: &mut Pcg64Mcg, e: &SimEvent<'_>, out: &mut String) {
    let mut good = String::new();
    event_line(e, None, &mut good);
    let good = good.trim_end();
    // A bad position rejects only a playback event's line; elsewhere the
    // field would just be emptied and flagged.
    let kinds = if streamreel_tables::EventType::parse(e.event_type).is_playback() { 6 } else { 4 };
    match rng.random_range(0..kinds) {
        0 => out.push_str(&good[..good.len() / 2]),
        1 => out.push_str("[\"not\", \"an\", \"object\"]"),
        2 => out.push_str(&good.replacen(&format!("\"customer_id\":\"{}\",", e.customer.id), "", 1)),
        3 => out.push_str(&good.replacen("\"event_timestamp\":\"", "\"event_timestamp\":\"not-a-time ", 1)),
        4 => out.push_str(&good.replacen("\"position_seconds\":", "\"position_seconds\":-1", 1)),
        _ => out.push_str(&good.replacen("\"position_seconds\":", "\"position_seconds\":\"abc\",\"x\":", 1)),
    }
    out.push('\n');
}
