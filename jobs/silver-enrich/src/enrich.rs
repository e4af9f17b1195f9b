//! Bronze rows to clean silver events: canonical event types, the session
//! key, the video metadata joined on `title_id`, and the IP address replaced
//! by a keyed hash and its network.

use ahash::AHashMap;
use std::net::IpAddr;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use streamreel_lake::EventType;
use streamreel_lake::arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, Float64Builder, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use streamreel_lake::arrow::datatypes::TimestampMicrosecondType;

use crate::error::SilverError;
use crate::schema::EVENTS_SCHEMA;

/// The bronze columns silver reads: all but the raw line, the run id and the
/// landing partition.
pub static BRONZE_COLUMNS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    use bronze_ingest::schema::{EVENTS_SCHEMA, LANDING_DATE, LANDING_HOUR};
    EVENTS_SCHEMA
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| !["raw_line", "run_id", LANDING_DATE, LANDING_HOUR].contains(name))
        .collect()
});

pub use streamreel_lake::delta::MICROS_PER_DAY;

/// One title's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoMetadata {
    pub title: Option<String>,
    pub genre: Option<String>,
    pub creator: Option<String>,
    pub duration_seconds: Option<f64>,
    /// The CSV's other columns, as a JSON object.
    pub extra: String,
}

pub struct Metadata {
    pub videos: AHashMap<String, VideoMetadata>,
}

impl Metadata {
    /// Parses the metadata CSV (`title_id, title, genre, creator,
    /// duration_seconds`, and any other columns).
    pub fn parse(bytes: &[u8], source: &str) -> Result<Metadata, SilverError> {
        let bad = |detail: String| SilverError::Metadata { file: source.to_string(), detail };
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
        let headers: Vec<String> = reader.headers().map_err(|e| bad(e.to_string()))?.iter().map(str::to_string).collect();
        let column = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| bad(format!("no {name} column")));
        let (id, title, genre, creator, duration) =
            (column("title_id")?, column("title")?, column("genre")?, column("creator")?, column("duration_seconds")?);
        let mut videos = AHashMap::new();
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let field = |i: usize| record.get(i).filter(|v| !v.is_empty()).map(str::to_string);
            let duration_seconds = match field(duration) {
                None => None,
                Some(text) => Some(
                    text.parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && *d > 0.0)
                        .ok_or_else(|| bad(format!("line {}: duration_seconds {text:?} is not a positive number", line + 2)))?,
                ),
            };
            let extra: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .enumerate()
                .filter(|(i, _)| ![id, title, genre, creator, duration].contains(i))
                .map(|(i, name)| (name.clone(), record.get(i).unwrap_or_default().into()))
                .collect();
            let Some(title_id) = field(id) else { continue };
            videos.insert(
                title_id,
                VideoMetadata {
                    title: field(title),
                    genre: field(genre),
                    creator: field(creator),
                    duration_seconds,
                    extra: serde_json::Value::Object(extra).to_string(),
                },
            );
        }
        Ok(Metadata { videos })
    }

    pub fn duration(&self, title_id: &str) -> Option<f64> {
        self.videos.get(title_id).and_then(|v| v.duration_seconds)
    }
}

/// Replaces IP addresses by a keyed hash and a truncated network.
pub struct IpMasker {
    mac: Hmac<Sha256>,
}

impl IpMasker {
    pub fn new(key: &[u8]) -> IpMasker {
        IpMasker { mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length") }
    }

    /// HMAC-SHA256 of the address, first 16 bytes in hex.
    pub fn hash(&self, ip: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(ip.trim().as_bytes());
        mac.finalize().into_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The /24 (IPv4) or /48 (IPv6) network, or `None` when not an address.
    pub fn network(ip: &str) -> Option<String> {
        match ip.trim().parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Some(format!("{a}.{b}.{c}.0/24"))
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
            }
        }
    }
}

fn strings(batch: &RecordBatch, name: &str) -> StringArray {
    batch.column_by_name(name).unwrap_or_else(|| panic!("bronze column {name}")).as_string::<i32>().clone()
}

/// Converts one bronze batch to the silver event schema.
pub fn to_silver(batch: &RecordBatch, metadata: &Metadata, masks: &AHashMap<String, (String, Option<String>)>) -> RecordBatch {
    let rows = batch.num_rows();
    let column = |name: &str| -> ArrayRef { batch.column_by_name(name).unwrap_or_else(|| panic!("bronze column {name}")).clone() };
    let (customer, title_id, session_id, event_type, device_id, ip) = (
        strings(batch, "customer_id"),
        strings(batch, "title_id"),
        strings(batch, "session_id"),
        strings(batch, "event_type"),
        strings(batch, "device_id"),
        strings(batch, "ip_address"),
    );
    let timestamps = batch.column_by_name("event_timestamp").expect("timestamp").as_primitive::<TimestampMicrosecondType>();

    let mut session_key = StringBuilder::with_capacity(rows, rows * 24);
    let mut canonical = StringBuilder::with_capacity(rows, rows * 8);
    let (mut ip_hash, mut ip_network) = (StringBuilder::new(), StringBuilder::new());
    let (mut title, mut genre, mut creator, mut extra) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let mut duration = Float64Builder::with_capacity(rows);
    let mut flags = ListBuilder::new(StringBuilder::new());
    let mut event_date = Date32Builder::with_capacity(rows);
    let mut key = String::new();
    for i in 0..rows {
        if session_id.is_null(i) {
            key.clear();
            key.push_str(customer.value(i));
            key.push('|');
            if device_id.is_valid(i) {
                key.push_str(device_id.value(i));
            }
            session_key.append_value(&key);
        } else {
            session_key.append_value(session_id.value(i));
        }
        let raw_type = event_type.value(i);
        match EventType::parse(raw_type).canonical_name() {
            Some(name) => canonical.append_value(name),
            None => canonical.append_value(raw_type.trim().to_ascii_lowercase()),
        }
        match ip.is_valid(i).then(|| masks.get(ip.value(i))).flatten() {
            Some((hash, network)) => {
                ip_hash.append_value(hash);
                ip_network.append_option(network.as_deref());
            }
            None => {
                ip_hash.append_null();
                ip_network.append_null();
            }
        }
        match metadata.videos.get(title_id.value(i)) {
            Some(video) => {
                title.append_option(video.title.as_deref());
                genre.append_option(video.genre.as_deref());
                creator.append_option(video.creator.as_deref());
                duration.append_option(video.duration_seconds);
                extra.append_value(&video.extra);
                flags.append(true);
            }
            None => {
                title.append_null();
                genre.append_null();
                creator.append_null();
                duration.append_null();
                extra.append_null();
                flags.values().append_value("missing_metadata");
                flags.append(true);
            }
        }
        event_date.append_value(streamreel_lake::delta::day_of(timestamps.value(i)));
    }

    let columns: Vec<ArrayRef> = vec![
        column("event_id"),
        Arc::new(customer),
        Arc::new(title_id),
        Arc::new(session_id),
        Arc::new(session_key.finish()),
        Arc::new(canonical.finish()),
        Arc::new(event_type),
        column("event_timestamp"),
        column("position_seconds"),
        column("watch_duration_seconds"),
        column("completion_percentage"),
        column("bandwidth_mbps"),
        column("buffering_events"),
        column("buffering_duration_seconds"),
        column("error_count"),
        column("device_type"),
        Arc::new(device_id),
        column("device_os"),
        column("app_version"),
        column("quality"),
        Arc::new(ip_hash.finish()),
        Arc::new(ip_network.finish()),
        column("country"),
        column("state"),
        column("city"),
        column("isp"),
        column("connection_type"),
        Arc::new(title.finish()),
        Arc::new(genre.finish()),
        Arc::new(creator.finish()),
        Arc::new(duration.finish()),
        Arc::new(extra.finish()),
        Arc::new(flags.finish()),
        column("source_object"),
        column("line_number"),
        Arc::new(event_date.finish()),
    ];
    RecordBatch::try_new(EVENTS_SCHEMA.clone(), columns).expect("silver event columns match the schema")
}

/// Hashes every distinct address of the batches once.
pub fn mask_addresses(batches: &[RecordBatch], masker: &IpMasker) -> AHashMap<String, (String, Option<String>)> {
    let mut masks = AHashMap::new();
    for batch in batches {
        let ip = strings(batch, "ip_address");
        for value in ip.iter().flatten() {
            if !masks.contains_key(value) {
                masks.insert(value.to_string(), (masker.hash(value), IpMasker::network(value)));
            }
        }
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_become_a_keyed_hash_and_a_network() {
        let masker = IpMasker::new(b"key-1");
        assert_eq!(IpMasker::network("192.168.1.100").as_deref(), Some("192.168.1.0/24"));
        assert_eq!(IpMasker::network("2001:db8:abcd:12::1").as_deref(), Some("2001:db8:abcd::/48"));
        assert_eq!(IpMasker::network("not an ip"), None);
        let hash = masker.hash("192.168.1.100");
        assert_eq!(hash.len(), 32);
        assert_eq!(hash, masker.hash("192.168.1.100"));
        assert_ne!(hash, IpMasker::new(b"key-2").hash("192.168.1.100"), "the key matters");
        assert!(!hash.contains("192"));
    }

    #[test]
    fn metadata_csv_keeps_extra_columns_and_refuses_bad_durations() {
        let csv = "title_id,title,genre,creator,duration_seconds,release_year\nv1,One,Drama,Ann,300,2020\nv2,Two,,Bob,,\n";
        let metadata = Metadata::parse(csv.as_bytes(), "test").unwrap();
        assert_eq!(metadata.duration("v1"), Some(300.0));
        assert_eq!(metadata.duration("v2"), None);
        assert_eq!(metadata.videos["v1"].extra, r#"{"release_year":"2020"}"#);
        assert_eq!(metadata.videos["v2"].genre, None);
        let bad = "title_id,title,genre,creator,duration_seconds\nv1,One,Drama,Ann,-5\n";
        assert!(Metadata::parse(bad.as_bytes(), "test").is_err());
        assert!(Metadata::parse(b"title_id,title\nv1,x\n", "test").is_err());
    }
}
