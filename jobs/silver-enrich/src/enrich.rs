//! Bronze rows to clean silver events: canonical event types, the session
//! key, the video metadata joined on `title_id`, quality flags, the IP
//! address replaced by a keyed hash and its network, and the keys and bucket
//! later runs look events up by.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use ahash::AHashMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use streamreel_lake::arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, Float64Builder, Int32Builder, Int64Builder, ListArray, ListBuilder, RecordBatch, StringArray,
    StringBuilder,
};
use streamreel_lake::arrow::datatypes::TimestampMicrosecondType;
use streamreel_lake::shard::key_hash;
use streamreel_tables::silver::EVENTS;
use streamreel_tables::{EventType, Metadata, customer_bucket};

/// The bronze columns silver reads: all but the raw line, the run id and the
/// landing partition.
pub static BRONZE_COLUMNS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    use streamreel_tables::bronze::{EVENTS, LANDING_DATE, LANDING_HOUR, OBJECT_BUCKET};
    EVENTS
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| !["raw_line", "run_id", LANDING_DATE, LANDING_HOUR, OBJECT_BUCKET].contains(name))
        .collect()
});

pub const MISSING_METADATA: &str = "missing_metadata";
pub const INVALID_OPTIONAL_FIELD: &str = "invalid_optional_field";

/// Replaces IP addresses by a keyed hash and a truncated network.
pub struct IpMasker {
    mac: Hmac<Sha256>,
    /// A short fingerprint of the key, stored beside every hash: rows hashed
    /// with different keys are told apart after a key rotation.
    pub key_id: String,
}

impl IpMasker {
    pub fn new(key: &[u8]) -> IpMasker {
        let fingerprint = Sha256::digest([b"streamreel-ip-key:".as_slice(), key].concat());
        IpMasker {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length"),
            key_id: fingerprint[..4].iter().map(|b| format!("{b:02x}")).collect(),
        }
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

/// Each address's keyed hash and network, looked up once per event.
pub type Masks = AHashMap<String, (String, Option<String>)>;

/// Hashes every distinct address of the batches once.
pub fn mask_addresses(batches: &[RecordBatch], masker: &IpMasker) -> Masks {
    let mut masks = Masks::new();
    for batch in batches {
        for value in strings(batch, "ip_address").iter().flatten() {
            if !masks.contains_key(value) {
                masks.insert(value.to_string(), (masker.hash(value), IpMasker::network(value)));
            }
        }
    }
    masks
}

fn strings(batch: &RecordBatch, name: &str) -> StringArray {
    batch.column_by_name(name).unwrap_or_else(|| panic!("bronze column {name}")).as_string::<i32>().clone()
}

/// What enrichment needs besides the rows.
pub struct Enrichment<'a> {
    pub metadata: &'a Metadata,
    pub masks: &'a Masks,
    pub key_id: &'a str,
    pub buckets: u32,
}

/// Converts one bronze batch to the silver event schema.
pub fn to_silver(batch: &RecordBatch, with: &Enrichment<'_>) -> RecordBatch {
    let rows = batch.num_rows();
    let column = |name: &str| -> ArrayRef { batch.column_by_name(name).unwrap_or_else(|| panic!("bronze column {name}")).clone() };
    let (event_id, customer, title_id, session_id, event_type, device_id, ip) = (
        strings(batch, "event_id"),
        strings(batch, "customer_id"),
        strings(batch, "title_id"),
        strings(batch, "session_id"),
        strings(batch, "event_type"),
        strings(batch, "device_id"),
        strings(batch, "ip_address"),
    );
    let timestamps = batch.column_by_name("event_timestamp").expect("timestamp").as_primitive::<TimestampMicrosecondType>();
    let invalid = batch.column_by_name("invalid_fields").expect("invalid_fields").as_list::<i32>().clone();

    let mut session_key = StringBuilder::with_capacity(rows, rows * 24);
    let mut canonical = StringBuilder::with_capacity(rows, rows * 8);
    let (mut ip_hash, mut ip_key, mut ip_network) =
        (StringBuilder::with_capacity(rows, rows * 32), StringBuilder::with_capacity(rows, rows * 8), StringBuilder::with_capacity(rows, rows * 16));
    let (mut title, mut genre, mut creator, mut extra) = (StringBuilder::new(), StringBuilder::new(), StringBuilder::new(), StringBuilder::new());
    let mut duration = Float64Builder::with_capacity(rows);
    let mut flags = ListBuilder::new(StringBuilder::new());
    let (mut event_key, mut session_hash) = (Int64Builder::with_capacity(rows), Int64Builder::with_capacity(rows));
    let mut event_date = Date32Builder::with_capacity(rows);
    let mut bucket = Int32Builder::with_capacity(rows);
    let mut key = String::new();
    for i in 0..rows {
        let customer_id = customer.value(i);
        key.clear();
        if session_id.is_null(i) {
            key.push_str(customer_id);
            key.push('|');
            if device_id.is_valid(i) {
                key.push_str(device_id.value(i));
            }
        } else {
            key.push_str(session_id.value(i));
        }
        session_key.append_value(&key);
        event_key.append_value(key_hash(&[customer_id, event_id.value(i)]));
        session_hash.append_value(key_hash(&[customer_id, &key]));
        let raw_type = event_type.value(i);
        match EventType::parse(raw_type).canonical_name() {
            Some(name) => canonical.append_value(name),
            None => canonical.append_value(raw_type.trim().to_ascii_lowercase()),
        }
        match ip.is_valid(i).then(|| with.masks.get(ip.value(i))).flatten() {
            Some((hash, network)) => {
                ip_hash.append_value(hash);
                ip_key.append_value(with.key_id);
                ip_network.append_option(network.as_deref());
            }
            None => {
                ip_hash.append_null();
                ip_key.append_null();
                ip_network.append_null();
            }
        }
        match with.metadata.get(title_id.value(i)) {
            Some(video) => {
                title.append_option(video.title.as_deref());
                genre.append_option(video.genre.as_deref());
                creator.append_option(video.creator.as_deref());
                duration.append_option(video.duration_seconds);
                extra.append_value(&video.extra);
            }
            None => {
                title.append_null();
                genre.append_null();
                creator.append_null();
                duration.append_null();
                extra.append_null();
                flags.values().append_value(MISSING_METADATA);
            }
        }
        if invalid.value_length(i) > 0 {
            flags.values().append_value(INVALID_OPTIONAL_FIELD);
        }
        flags.append(true);
        event_date.append_value(streamreel_lake::time::day_of(timestamps.value(i)));
        bucket.append_value(customer_bucket(customer_id, with.buckets) as i32);
    }

    let columns: Vec<ArrayRef> = vec![
        Arc::new(event_id),
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
        Arc::new(ip_key.finish()),
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
        Arc::new(ListArray::from(invalid.to_data())),
        column("source_object"),
        column("line_number"),
        Arc::new(event_key.finish()),
        Arc::new(session_hash.finish()),
        Arc::new(event_date.finish()),
        Arc::new(bucket.finish()),
    ];
    RecordBatch::try_new(EVENTS.schema.clone(), columns).expect("silver event columns match the schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_become_a_keyed_hash_a_key_fingerprint_and_a_network() {
        let masker = IpMasker::new(b"key-1");
        assert_eq!(IpMasker::network("192.168.1.100").as_deref(), Some("192.168.1.0/24"));
        assert_eq!(IpMasker::network("2001:db8:abcd:12::1").as_deref(), Some("2001:db8:abcd::/48"));
        assert_eq!(IpMasker::network("not an ip"), None);
        let hash = masker.hash("192.168.1.100");
        assert_eq!(hash.len(), 32);
        assert_eq!(hash, masker.hash("192.168.1.100"));
        let other = IpMasker::new(b"key-2");
        assert_ne!(hash, other.hash("192.168.1.100"), "the key matters");
        assert_ne!(masker.key_id, other.key_id);
        assert_eq!(masker.key_id.len(), 8);
        assert!(!hash.contains("192"));
    }
}
