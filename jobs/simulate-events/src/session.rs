//! Who watches what, and how: the viewer population and one playback
//! session's events, drawn from a seeded random generator.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand_pcg::Pcg64Mcg;

use crate::SimulationSpec;

#[derive(Debug, Clone)]
pub struct Title {
    pub id: String,
    pub duration: f64,
}

pub struct Device {
    pub id: String,
    pub kind: &'static str,
    pub os: &'static str,
    pub app_version: &'static str,
}

pub struct Customer {
    pub id: String,
    pub devices: Vec<Device>,
    pub country: &'static str,
    pub state: &'static str,
    pub city: &'static str,
    pub isp: &'static str,
    pub connection: &'static str,
    pub ip: String,
    pub bandwidth: f64,
    /// How long this viewer's stalls last relative to the best networks:
    /// some ISPs, and mobile connections, buffer much more.
    pub stall_factor: f64,
}

pub struct Population {
    pub customers: Vec<Customer>,
    pub titles: Vec<Title>,
    /// Cumulative Zipf-like popularity of `titles`.
    popularity: Vec<f64>,
    seed: u64,
    /// Titles a zapping session flips through (`SimulationSpec::viewer_titles`).
    zapping: Option<u32>,
}

const DEVICES: [(&str, f64, &[&str]); 4] = [
    ("mobile", 0.35, &["iOS", "Android"]),
    ("tv", 0.30, &["Roku OS", "tvOS", "Android TV", "Tizen"]),
    ("web", 0.25, &["Windows", "macOS", "Linux"]),
    ("tablet", 0.10, &["iPadOS", "Android"]),
];
static QUALITIES: [(&str, f64); 3] = [("HD", 0.60), ("SD", 0.25), ("4K", 0.15)];
const APP_VERSIONS: [&str; 4] = ["5.2.1", "5.2.0", "5.1.4", "4.9.9"];
const CONNECTIONS: [&str; 4] = ["wifi", "mobile", "fiber", "cable"];
/// (country, share, [(state, city)], ISPs)
type Country = (&'static str, f64, &'static [(&'static str, &'static str)], &'static [&'static str]);
const GEOGRAPHY: [Country; 6] = [
    (
        "United States",
        0.50,
        &[("California", "Los Angeles"), ("New York", "New York"), ("Texas", "Austin"), ("Illinois", "Chicago")],
        &["Comcast", "Spectrum", "AT&T", "Verizon"],
    ),
    ("United Kingdom", 0.12, &[("England", "London"), ("Scotland", "Glasgow")], &["BT", "Virgin Media", "Sky"]),
    ("Canada", 0.10, &[("Ontario", "Toronto"), ("Quebec", "Montreal")], &["Rogers", "Bell"]),
    ("Germany", 0.10, &[("Bavaria", "Munich"), ("Berlin", "Berlin")], &["Deutsche Telekom", "Vodafone"]),
    ("Brazil", 0.10, &[("Sao Paulo", "Sao Paulo"), ("Rio de Janeiro", "Rio de Janeiro")], &["Vivo", "Claro"]),
    ("India", 0.08, &[("Maharashtra", "Mumbai"), ("Karnataka", "Bengaluru")], &["Jio", "Airtel"]),
];

fn pick<'a, T>(rng: &mut Pcg64Mcg, items: &'a [(T, f64)]) -> &'a T {
    let mut draw: f64 = rng.random();
    for (item, share) in items {
        if draw < *share {
            return item;
        }
        draw -= share;
    }
    &items[items.len() - 1].0
}

fn one<T: Copy>(rng: &mut Pcg64Mcg, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

impl Population {
    pub fn new(spec: &SimulationSpec, titles: &[Title]) -> Population {
        use rand::SeedableRng;
        let mut rng = Pcg64Mcg::seed_from_u64(spec.seed);
        // About 60 events per viewer; zapping viewers (about 2.5 events per
        // title) come back for several sessions.
        let count = match spec.viewer_titles {
            Some(titles) => spec.events / (8 * u64::from(titles.max(1))),
            None => spec.events / 60,
        }
        .max(50) as usize;
        let devices: Vec<(usize, f64)> = DEVICES.iter().enumerate().map(|(i, d)| (i, d.1)).collect();
        let geography: Vec<(usize, f64)> = GEOGRAPHY.iter().enumerate().map(|(i, g)| (i, g.1)).collect();
        let customers = (0..count)
            .map(|i| {
                let device_count = 1 + (rng.random::<f64>() * rng.random::<f64>() * 3.0) as usize;
                let devices = (0..device_count)
                    .map(|d| {
                        let (kind, _, systems) = DEVICES[*pick(&mut rng, &devices)];
                        Device { id: format!("DEV_{:06x}{d}", i), kind, os: one(&mut rng, systems), app_version: one(&mut rng, &APP_VERSIONS) }
                    })
                    .collect();
                let (country, _, places, isps) = GEOGRAPHY[*pick(&mut rng, &geography)];
                let (state, city) = one(&mut rng, places);
                let isp_index = rng.random_range(0..isps.len());
                let connection = one(&mut rng, &CONNECTIONS);
                let stall_factor = (1.0 + 2.5 * isp_index as f64) * if connection == "mobile" { 2.0 } else { 1.0 };
                let ip = if rng.random_bool(0.05) {
                    format!("2001:db8:{:x}:{:x}::{:x}", rng.random::<u16>(), rng.random::<u16>(), rng.random::<u16>())
                } else {
                    format!("{}.{}.{}.{}", rng.random_range(11..223), rng.random::<u8>(), rng.random::<u8>(), rng.random_range(1..255))
                };
                Customer {
                    id: format!("CUST_{i:07}"),
                    devices,
                    country,
                    state,
                    city,
                    isp: isps[isp_index],
                    connection,
                    ip,
                    bandwidth: (rng.random_range(3.0..120.0f64) * 10.0).round() / 10.0,
                    stall_factor,
                }
            })
            .collect();
        let mut total = 0.0;
        let popularity = (0..titles.len())
            .map(|i| {
                total += 1.0 / ((i + 1) as f64).powf(0.8);
                total
            })
            .collect();
        Population { customers, titles: titles.to_vec(), popularity, seed: spec.seed, zapping: spec.viewer_titles }
    }

    fn title(&self, rng: &mut Pcg64Mcg) -> usize {
        let draw = rng.random::<f64>() * self.popularity.last().copied().unwrap_or(1.0);
        self.popularity.partition_point(|c| *c < draw).min(self.titles.len() - 1)
    }
}

/// One generated event, before it is written as a JSON line.
pub struct SimEvent<'p> {
    pub event_id: String,
    pub customer: &'p Customer,
    pub device: &'p Device,
    /// `None` for a title missing from the metadata.
    pub title: Option<&'p Title>,
    pub session_id: Option<String>,
    pub event_type: &'static str,
    pub time: DateTime<Utc>,
    pub position: f64,
    pub watched: f64,
    pub quality: &'static str,
    pub bandwidth: f64,
    pub buffering_events: u32,
    pub buffering_seconds: f64,
    pub errors: u32,
}

/// The draw that fixes a session before its events are played out.
pub struct SessionPlan {
    customer: usize,
    device: usize,
    title: usize,
    start: DateTime<Utc>,
    session_id: Option<String>,
    event_prefix: String,
    speed: f64,
    quality: &'static str,
    unknown_title: bool,
}

impl SessionPlan {
    pub fn draw(rng: &mut Pcg64Mcg, population: &Population, hour_start: DateTime<Utc>, hour: u32, index: u64) -> SessionPlan {
        let customer = rng.random_range(0..population.customers.len());
        let device = rng.random_range(0..population.customers[customer].devices.len());
        let start = hour_start + Duration::milliseconds(rng.random_range(0..3_600_000));
        SessionPlan {
            customer,
            device,
            title: population.title(rng),
            start,
            // A few players send no session id: the pipeline keys those by
            // (customer, device).
            session_id: (!rng.random_bool(0.03)).then(|| format!("SES_{:x}_{hour:02}_{index:07}", population.seed)),
            event_prefix: format!("EVT_{:x}_{hour:02}_{index:07}", population.seed),
            speed: if rng.random_bool(0.04) {
                2.0
            } else if rng.random_bool(0.04) {
                1.5
            } else {
                1.0
            },
            quality: pick::<&'static str>(rng, &QUALITIES),
            unknown_title: rng.random_bool(0.003),
        }
    }

    /// Plays the session out: a state machine of viewer behaviour.
    pub fn events<'p>(&self, rng: &mut Pcg64Mcg, population: &'p Population) -> Vec<SimEvent<'p>> {
        let customer = &population.customers[self.customer];
        let device = &customer.devices[self.device];
        let missing = Title { id: "TITLE_UNKNOWN".into(), duration: 1800.0 };
        let mut title_index = self.title;
        let mut events: Vec<SimEvent<'p>> = Vec::new();
        let mut time = self.start;
        let mut position = if rng.random_bool(0.2) { (rng.random::<f64>() * population.titles[title_index].duration * 0.8).floor() } else { 0.0 };
        let (mut watched, mut buffering_events, mut buffering_seconds, mut errors) = (0.0, 0u32, 0.0, 0u32);
        let mut quality = self.quality;
        let bandwidth = customer.bandwidth;
        let emit = |events: &mut Vec<SimEvent<'p>>,
                    kind: &'static str,
                    time: DateTime<Utc>,
                    position: f64,
                    title_index: usize,
                    watched: f64,
                    quality: &'static str,
                    be: u32,
                    bs: f64,
                    errs: u32| {
            let title = if self.unknown_title { None } else { Some(&population.titles[title_index]) };
            events.push(SimEvent {
                event_id: format!("{}_{:03}", self.event_prefix, events.len()),
                customer,
                device,
                title,
                session_id: self.session_id.clone(),
                event_type: kind,
                time,
                position: (position * 1000.0).round() / 1000.0,
                watched: (watched * 10.0f64).round() / 10.0,
                quality,
                bandwidth,
                buffering_events: be,
                buffering_seconds: (bs * 10.0f64).round() / 10.0,
                errors: errs,
            });
        };
        let _ = &missing;
        emit(&mut events, alias(rng, "start"), time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
        let heartbeat: f64 = 30.0;
        let mut zapped = 0u32;
        while events.len() < 240 {
            let duration = population.titles[title_index].duration;
            // Play a stretch, with heartbeats, until the next action.
            let mean_stretch = if population.zapping.is_some() { 40.0 } else { 600.0 };
            let stretch = (-rng.random::<f64>().max(1e-9).ln() * mean_stretch).max(5.0);
            let mut played = 0.0;
            let mut finished = false;
            while played < stretch {
                let step = heartbeat.min(stretch - played);
                let advance = step * self.speed;
                if position + advance >= duration {
                    let left = (duration - position).max(0.0);
                    time += Duration::milliseconds((left / self.speed * 1000.0) as i64);
                    watched += left;
                    position = duration;
                    finished = true;
                    break;
                }
                time += Duration::milliseconds((step * 1000.0) as i64);
                position += advance;
                watched += advance;
                played += step;
                if step >= heartbeat {
                    // Now and then the player skips ahead without a seek event.
                    if rng.random_bool(0.01) {
                        position = (position + rng.random_range(30.0..300.0)).min(duration - 1.0).max(0.0);
                    }
                    emit(
                        &mut events,
                        alias(rng, "heartbeat"),
                        time,
                        position,
                        title_index,
                        watched,
                        quality,
                        buffering_events,
                        buffering_seconds,
                        errors,
                    );
                }
            }
            if finished {
                emit(&mut events, alias(rng, "complete"), time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                if rng.random_bool(0.5) {
                    emit(&mut events, "stop", time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                }
                if rng.random_bool(0.3) {
                    // Autoplay: the next video in the same session.
                    title_index = population.title(rng);
                    position = 0.0;
                    time += Duration::seconds(rng.random_range(5..15));
                    emit(&mut events, "start", time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                    continue;
                }
                break;
            }
            if let Some(titles) = population.zapping {
                if zapped + 1 >= titles {
                    emit(&mut events, "stop", time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                    break;
                }
                zapped += 1;
                title_index = rng.random_range(0..population.titles.len());
                position = 0.0;
                time += Duration::seconds(rng.random_range(1..5));
                emit(&mut events, "start", time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                continue;
            }
            let action: f64 = rng.random();
            match action {
                a if a < 0.33 => {
                    emit(
                        &mut events,
                        alias(rng, "pause"),
                        time,
                        position,
                        title_index,
                        watched,
                        quality,
                        buffering_events,
                        buffering_seconds,
                        errors,
                    );
                    time += Duration::seconds(rng.random_range(3..400));
                    emit(
                        &mut events,
                        alias(rng, "resume"),
                        time,
                        position,
                        title_index,
                        watched,
                        quality,
                        buffering_events,
                        buffering_seconds,
                        errors,
                    );
                }
                a if a < 0.47 => {
                    let target = if rng.random_bool(0.6) {
                        (position + rng.random_range(10.0..600.0)).min(duration - 1.0)
                    } else {
                        (position - rng.random_range(10.0..300.0)).max(0.0)
                    };
                    position = target.max(0.0);
                    emit(&mut events, alias(rng, "seek"), time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                }
                a if a < 0.57 => {
                    emit(&mut events, "buffer_start", time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                    let stall = rng.random_range(1.0..12.0) * customer.stall_factor;
                    time += Duration::milliseconds((stall * 1000.0) as i64);
                    buffering_events += 1;
                    buffering_seconds += stall;
                    emit(&mut events, "buffer_end", time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                }
                a if a < 0.60 => {
                    quality = *pick(rng, &QUALITIES);
                    emit(&mut events, "quality_change", time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                }
                a if a < 0.61 => {
                    errors += 1;
                    emit(&mut events, "error", time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                }
                a if a < 0.66 => {
                    // Switch to another video without stopping.
                    title_index = population.title(rng);
                    position = 0.0;
                    time += Duration::seconds(rng.random_range(1..20));
                    emit(
                        &mut events,
                        alias(rng, "start"),
                        time,
                        position,
                        title_index,
                        watched,
                        quality,
                        buffering_events,
                        buffering_seconds,
                        errors,
                    );
                }
                a if a < 0.76 => {
                    // Browser closed: no closing event. Sometimes the viewer
                    // comes back later with the same session id.
                    if self.session_id.is_some() && rng.random_bool(0.3) {
                        time += Duration::seconds(rng.random_range(1900..5400));
                        emit(
                            &mut events,
                            alias(rng, "start"),
                            time,
                            position,
                            title_index,
                            watched,
                            quality,
                            buffering_events,
                            buffering_seconds,
                            errors,
                        );
                        continue;
                    }
                    break;
                }
                _ => {
                    emit(&mut events, alias(rng, "stop"), time, position, title_index, watched, quality, buffering_events, buffering_seconds, errors);
                    break;
                }
            }
        }
        events
    }
}

/// Mostly canonical names; sometimes an alias of the seeds, in any case.
fn alias(rng: &mut Pcg64Mcg, canonical: &'static str) -> &'static str {
    if !rng.random_bool(0.06) {
        return canonical;
    }
    let options: &[&'static str] = match canonical {
        "start" => &["play", "video_play", "PLAY", "Session_Start"],
        "resume" => &["video_resume", "RESUME"],
        "heartbeat" => &["ping", "progress", "HEARTBEAT"],
        "pause" => &["video_pause", "PAUSE"],
        "seek" => &["seeked", "video_seek"],
        "stop" => &["video_stop", "close", "session_end"],
        "complete" => &["ended", "video_complete", "END"],
        _ => &[canonical],
    };
    one(rng, options)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;

    use super::*;

    /// Distinct (viewer, title) pairs per event over `sessions` sessions.
    fn pairs_per_event(viewer_titles: Option<u32>) -> f64 {
        let spec = SimulationSpec { events: 20_000, viewer_titles, ..Default::default() };
        let titles: Vec<Title> = (0..100).map(|i| Title { id: format!("T{i}"), duration: 1200.0 }).collect();
        let population = Population::new(&spec, &titles);
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let start = spec.date.and_hms_opt(10, 0, 0).expect("valid hour").and_utc();
        let (mut pairs, mut events) = (HashSet::new(), 0usize);
        for index in 0..300 {
            for event in SessionPlan::draw(&mut rng, &population, start, 10, index).events(&mut rng, &population) {
                events += 1;
                pairs.insert((event.customer.id.clone(), event.title.map(|t| t.id.clone())));
            }
        }
        pairs.len() as f64 / events as f64
    }

    #[test]
    fn zapping_viewers_watch_many_titles() {
        let (realistic, zapping) = (pairs_per_event(None), pairs_per_event(Some(20)));
        assert!(zapping > 4.0 * realistic, "viewer-title pairs per event: zapping {zapping:.3}, realistic {realistic:.3}");
    }
}
