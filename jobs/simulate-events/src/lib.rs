//! A seeded, deterministic simulator of player telemetry landing in
//! `year=/month=/day=/hour=` folders: realistic sessions (pauses, seeks,
//! heartbeats, browser closes, video switches), the distributions of seed 002,
//! late and duplicate deliveries, and a small share of bad lines.

mod session;
mod write;

use std::collections::BTreeMap;
use std::io::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use serde::Serialize;
use streamreel_lake::Location;

pub use session::Title;
use session::{Population, SessionPlan};

#[derive(Debug, Clone)]
pub struct SimulationSpec {
    pub date: NaiveDate,
    /// Roughly how many events to generate (duplicates and bad lines extra).
    pub events: u64,
    pub seed: u64,
    /// Objects each generating hour splits its on-time events into.
    pub shards: u32,
    pub late_ratio: f64,
    pub very_late_ratio: f64,
    pub duplicate_ratio: f64,
    pub bad_line_ratio: f64,
    /// What a hostile producer and a flaky network add (none by default).
    pub faults: Faults,
    /// Viewing happens in the first this many hours of the day (24 by
    /// default; fewer makes small test days quicker to run hour by hour).
    pub hours: u32,
    /// Zapping viewers, gold's hard case: each session flips through this
    /// many titles (picked uniformly, a short stretch each), and there are
    /// fewer viewers with more sessions, so viewer-title pairs are many.
    /// `None`: realistic viewing.
    pub viewer_titles: Option<u32>,
}

/// How many of each fault a simulation injected.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FaultCounts {
    pub conflicting_copies: u64,
    pub reused_ids: u64,
    pub shared_session_sessions: u64,
    pub bad_optional_fields: u64,
    pub odd_objects: u64,
    pub damaged_objects: u64,
    pub hidden_objects: u64,
}

impl FaultCounts {
    fn add(&mut self, other: &FaultCounts) {
        self.conflicting_copies += other.conflicting_copies;
        self.reused_ids += other.reused_ids;
        self.shared_session_sessions += other.shared_session_sessions;
        self.bad_optional_fields += other.bad_optional_fields;
        self.odd_objects += other.odd_objects;
        self.damaged_objects += other.damaged_objects;
        self.hidden_objects += other.hidden_objects;
    }

    pub fn total(&self) -> u64 {
        self.conflicting_copies
            + self.reused_ids
            + self.shared_session_sessions
            + self.bad_optional_fields
            + self.odd_objects
            + self.damaged_objects
            + self.hidden_objects
    }
}

/// Deliveries that test the contract's edges, each drawn from its own
/// seeded generator (so a spec without faults gives the same bytes as ever).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Share of events sent again later with other content and a timestamp
    /// days away (some within the deduplication horizon, some beyond).
    pub conflicting_copies: f64,
    /// Share of events whose id comes from a small pool every viewer uses.
    pub reused_ids: f64,
    /// Share of sessions whose client sends `undefined` or `null` as id.
    pub shared_session_ids: f64,
    /// Share of events with an optional field that cannot hold its value.
    pub bad_optional_fields: f64,
    /// Objects with any name (no extension, `.txt`), plain text or several
    /// gzip members, a byte-order mark, damaged gzip, and hidden objects
    /// (`_SUCCESS`, `….tmp`) that must not be read.
    pub odd_objects: bool,
}

impl Faults {
    /// Every fault the simulator knows.
    pub fn hostile() -> Faults {
        Faults { conflicting_copies: 0.03, reused_ids: 0.03, shared_session_ids: 0.08, bad_optional_fields: 0.03, odd_objects: true }
    }
}

impl Default for SimulationSpec {
    fn default() -> Self {
        SimulationSpec {
            date: NaiveDate::from_ymd_opt(2025, 8, 11).expect("valid date"),
            events: 1_000_000,
            seed: 42,
            shards: 4,
            late_ratio: 0.02,
            very_late_ratio: 0.002,
            duplicate_ratio: 0.01,
            bad_line_ratio: 0.001,
            faults: Faults::default(),
            hours: 24,
            viewer_titles: None,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SimulationReport {
    pub sessions: u64,
    pub events: u64,
    /// Faults injected (all zero without `faults`).
    pub fault_counts: FaultCounts,
    pub duplicates: u64,
    pub bad_lines: u64,
    /// Every line written: events + duplicates + bad lines.
    pub lines: u64,
    pub objects: u64,
    pub compressed_bytes: u64,
    /// The landing hours written, as a window `--from`/`--to` can take.
    pub landing_from: String,
    pub landing_to: String,
}

/// Viewers by hour of day (UTC), midpoints of the ranges of seed 002.
const VIEWERS_BY_HOUR: [f64; 24] =
    [11.5, 11.5, 3.5, 3.5, 3.5, 3.5, 7.5, 7.5, 7.5, 7.5, 11.5, 11.5, 11.5, 11.5, 14.0, 14.0, 14.0, 14.0, 20.0, 20.0, 20.0, 20.0, 11.5, 11.5];

#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    #[error("cannot read the video metadata {0}: {1}")]
    Metadata(String, String),
    #[error(transparent)]
    Lake(#[from] streamreel_lake::LakeError),
    #[error("cannot write {object}: {source}")]
    Write { object: String, source: object_store::Error },
}

/// The titles of the metadata CSV that have a duration, read by the
/// pipeline's own metadata reader. The worked-example title is kept out of
/// the random mix.
pub fn read_titles(csv_bytes: &[u8], source: &str) -> Result<Vec<Title>, SimulationError> {
    let metadata = streamreel_tables::Metadata::parse(csv_bytes, source).map_err(|e| SimulationError::Metadata(source.into(), e.to_string()))?;
    let titles: Vec<Title> = metadata
        .titles()
        .filter(|(id, _)| *id != "video_001")
        .filter_map(|(id, video)| video.duration_seconds.map(|duration| Title { id: id.to_string(), duration }))
        .collect();
    if titles.is_empty() {
        return Err(SimulationError::Metadata(source.into(), "no titles".into()));
    }
    Ok(titles)
}

/// One generated object: landing hour and name, gzip bytes, line count.
struct Object {
    hour: DateTime<Utc>,
    name: String,
    bytes: Vec<u8>,
}

/// Generates the day and writes it under `landing`.
pub async fn simulate(spec: &SimulationSpec, titles: &[Title], landing: &Location) -> Result<SimulationReport, SimulationError> {
    let population = Population::new(spec, titles);
    let viewing_hours = spec.hours.clamp(1, 24);
    let total_weight: f64 = VIEWERS_BY_HOUR[..viewing_hours as usize].iter().sum();
    let hours: Vec<(u32, Vec<Object>, SimulationReport)> = (0..viewing_hours)
        .into_par_iter()
        .map(|hour| {
            let budget = (spec.events as f64 * VIEWERS_BY_HOUR[hour as usize] / total_weight).round() as u64;
            let (objects, report) = generate_hour(spec, &population, hour, budget);
            (hour, objects, report)
        })
        .collect();

    let (store, root) = landing.object_store()?;
    let mut report = SimulationReport::default();
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    for (_, objects, part) in hours {
        report.sessions += part.sessions;
        report.events += part.events;
        report.fault_counts.add(&part.fault_counts);
        report.duplicates += part.duplicates;
        report.bad_lines += part.bad_lines;
        report.lines += part.lines;
        for object in objects {
            first = Some(first.map_or(object.hour, |f| f.min(object.hour)));
            last = Some(last.map_or(object.hour, |l| l.max(object.hour)));
            let relative = format!("{}/{}", object.hour.format("year=%Y/month=%m/day=%d/hour=%H"), object.name);
            let path = object_store::path::Path::from(format!("{root}/{relative}").trim_start_matches('/'));
            report.objects += 1;
            report.compressed_bytes += object.bytes.len() as u64;
            use object_store::ObjectStoreExt;
            store.put(&path, object.bytes.into()).await.map_err(|source| SimulationError::Write { object: relative, source })?;
        }
    }
    let hour_text = |t: DateTime<Utc>| streamreel_lake::window::format_hour(t);
    if let (Some(first), Some(last)) = (first, last) {
        report.landing_from = hour_text(first);
        report.landing_to = hour_text(last + chrono::Duration::hours(1));
    }
    Ok(report)
}

/// An object being written: gzip as it goes, or (with odd objects) plain
/// lines, encoded at the end.
enum Sink {
    Gzip(Box<GzEncoder<Vec<u8>>>),
    Plain(Vec<u8>),
}

impl Sink {
    fn write(&mut self, line: &str) {
        match self {
            Sink::Gzip(encoder) => encoder.write_all(line.as_bytes()).expect("writing to memory"),
            Sink::Plain(bytes) => bytes.extend_from_slice(line.as_bytes()),
        }
    }
}

fn generate_hour(spec: &SimulationSpec, population: &Population, hour: u32, budget: u64) -> (Vec<Object>, SimulationReport) {
    let mut rng = Pcg64Mcg::seed_from_u64(spec.seed ^ ((hour as u64 + 1) * 0x9E37_79B9_7F4A_7C15));
    let mut faults_rng = Pcg64Mcg::seed_from_u64(spec.seed ^ ((hour as u64 + 1) * 0xD1B5_4A32_D192_ED03));
    let faults = &spec.faults;
    let hour_start = spec.date.and_hms_opt(hour, 0, 0).expect("valid hour").and_utc();
    let mut objects: BTreeMap<(DateTime<Utc>, String), Sink> = BTreeMap::new();
    let new_sink =
        || if faults.odd_objects { Sink::Plain(Vec::new()) } else { Sink::Gzip(Box::new(GzEncoder::new(Vec::new(), Compression::fast()))) };
    let mut report = SimulationReport::default();
    let mut line = String::with_capacity(1024);
    let mut session_index = 0u64;
    let chance = |rng: &mut Pcg64Mcg, p: f64| p > 0.0 && rng.random_bool(p);
    while report.events < budget {
        let plan = SessionPlan::draw(&mut rng, population, hour_start, hour, session_index);
        session_index += 1;
        report.sessions += 1;
        let shard = (session_index % spec.shards.max(1) as u64) as u32;
        let shared_session =
            chance(&mut faults_rng, faults.shared_session_ids).then(|| if faults_rng.random_bool(0.5) { "undefined" } else { "null" });
        report.fault_counts.shared_session_sessions += u64::from(shared_session.is_some());
        for mut event in plan.events(&mut rng, population) {
            if let Some(id) = shared_session {
                event.session_id = Some(id.to_string());
            }
            if chance(&mut faults_rng, faults.reused_ids) {
                event.event_id = format!("E{}", faults_rng.random_range(0..40));
                report.fault_counts.reused_ids += 1;
            }
            let bad_optional = chance(&mut faults_rng, faults.bad_optional_fields).then(|| faults_rng.random_range(0..5u8));
            report.fault_counts.bad_optional_fields += u64::from(bad_optional.is_some());
            report.events += 1;
            let copies = if rng.random_bool(spec.duplicate_ratio) { 2 } else { 1 };
            let mut landed_hour = hour_start;
            for copy in 0..copies {
                line.clear();
                let bad = copy == 0 && rng.random_bool(spec.bad_line_ratio);
                if bad {
                    write::bad_line(&mut rng, &event, &mut line);
                    report.bad_lines += 1;
                    report.events -= 1;
                } else {
                    write::event_line(&event, bad_optional, &mut line);
                }
                if copy == 1 {
                    report.duplicates += 1;
                }
                let delay_seconds = landing_delay(&mut rng, spec, copy == 1);
                let landed = event.time + chrono::Duration::seconds(delay_seconds);
                landed_hour = hour_of(landed);
                let name = if landed_hour == hour_start {
                    format!("events-{hour:02}-{shard}.json.gz")
                } else {
                    format!("late-from-{}-{hour:02}.json.gz", spec.date.format("%Y%m%d"))
                };
                objects.entry((landed_hour, name)).or_insert_with(new_sink).write(&line);
                report.lines += 1;
                if bad {
                    break;
                }
            }
            if chance(&mut faults_rng, faults.conflicting_copies) {
                // The same id re-sent hours later with another position and a
                // clock days off: within the horizon or beyond it.
                let days = *[-9i64, -8, -6, -3, -1, 1].get(faults_rng.random_range(0..6)).expect("in range");
                let mut copy = event;
                copy.time += chrono::Duration::days(days) + chrono::Duration::seconds(faults_rng.random_range(-600..600));
                copy.position += 17.0;
                line.clear();
                write::event_line(&copy, None, &mut line);
                let landed = hour_of(landed_hour.max(hour_start) + chrono::Duration::hours(faults_rng.random_range(1..4)));
                objects.entry((landed, format!("resent-{hour:02}.json"))).or_insert_with(new_sink).write(&line);
                report.duplicates += 1;
                report.lines += 1;
                report.fault_counts.conflicting_copies += 1;
            }
        }
    }
    let mut finished = Vec::new();
    for (index, ((hour, name), sink)) in objects.into_iter().enumerate() {
        match sink {
            Sink::Gzip(encoder) => finished.push(Object { hour, name, bytes: encoder.finish().expect("finishing in memory") }),
            Sink::Plain(lines) => finished.extend(odd_objects(&mut faults_rng, hour, &name, index, lines, &mut report.fault_counts)),
        }
    }
    (finished, report)
}

fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_hms_opt(chrono::Timelike::hour(&t), 0, 0).expect("hour").and_utc()
}

/// One object's lines as a hostile producer might deliver them: any name,
/// plain or gzip (one member or two), a byte-order mark, a damaged tail, and
/// sometimes hidden objects beside it that must not be read.
fn odd_objects(rng: &mut Pcg64Mcg, hour: DateTime<Utc>, name: &str, index: usize, mut lines: Vec<u8>, counts: &mut FaultCounts) -> Vec<Object> {
    let gzip = |bytes: &[u8]| {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("writing to memory");
        encoder.finish().expect("finishing in memory")
    };
    let name = match rng.random_range(0..10) {
        0..=2 => format!("part-{index:04}"),
        3 | 4 => format!("{}.txt", name.trim_end_matches(".gz")),
        _ => name.to_string(),
    };
    let plain = rng.random_bool(0.25);
    if rng.random_bool(0.1) {
        lines.splice(0..0, *b"\xEF\xBB\xBF");
    }
    let mut bytes = match rng.random_range(0..20) {
        _ if plain => lines.clone(),
        5..=7 => {
            // Two gzip members, split at a line boundary.
            let middle = lines[..lines.len() / 2].iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let mut two = gzip(&lines[..middle]);
            two.extend(gzip(&lines[middle..]));
            two
        }
        _ => gzip(&lines),
    };
    if bytes.starts_with(&[0x1f, 0x8b]) && rng.random_bool(0.05) {
        // A truncated upload: the complete lines before the damage count.
        bytes.truncate(bytes.len() * 4 / 5);
        counts.damaged_objects += 1;
    }
    counts.odd_objects += u64::from(!name.ends_with(".json.gz") || !bytes.starts_with(&[0x1f, 0x8b]));
    let mut out = vec![Object { hour, name: name.clone(), bytes }];
    if rng.random_bool(0.1) {
        let first_line: Vec<u8> = lines.iter().take_while(|b| **b != b'\n').chain(b"\n").copied().collect();
        out.push(Object { hour, name: format!("_SUCCESS-{index}"), bytes: first_line.clone() });
        out.push(Object { hour, name: format!("{name}.tmp"), bytes: first_line });
        counts.hidden_objects += 2;
    }
    out
}

/// Seconds between the event and its landing: most within two minutes, some
/// hours late, a few a day late; a duplicate re-delivery comes later.
fn landing_delay(rng: &mut Pcg64Mcg, spec: &SimulationSpec, duplicate: bool) -> i64 {
    let draw: f64 = rng.random();
    if draw < spec.very_late_ratio {
        rng.random_range(20 * 3600..30 * 3600)
    } else if draw < spec.very_late_ratio + spec.late_ratio || duplicate && draw < 0.3 {
        rng.random_range(3600..6 * 3600)
    } else {
        rng.random_range(1..120)
    }
}
