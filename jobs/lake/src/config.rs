//! The one YAML configuration every worker reads: where data lives, the
//! lake's bucket count, and every setting of the metrics contract, with all
//! defaults in one place (the `Default` impls below).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{LakeError, Result};
use crate::location::{Location, looks_like_url};

/// Environment variables that override the locations of a config file, so one
/// file can serve a laptop, CI and production.
pub const ENV_LANDING_URL: &str = "STREAMREEL_LANDING_URL";
pub const ENV_LAKE_URL: &str = "STREAMREEL_LAKE_URL";
pub const ENV_METADATA_URL: &str = "STREAMREEL_METADATA_URL";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where players' events land: a local directory or `s3://bucket/prefix`.
    pub landing_url: String,
    /// Root of the Delta tables: a local directory or `s3://…`.
    pub lake_url: String,
    /// The video metadata CSV.
    pub metadata_url: String,
    /// Hash buckets of customer ids (silver, gold) and of landing object
    /// paths (bronze): the unit of sharding. Fixed for the life of a lake.
    pub buckets: u32,
    pub bronze: BronzeSettings,
    pub silver: SilverSettings,
    pub metrics: MetricSettings,
    pub maintenance: MaintenanceSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BronzeSettings {
    /// A longer line is rejected (`line_too_long`) without being parsed.
    pub max_line_bytes: usize,
    /// How far past the end of its landing hour an event may be stamped
    /// (client clocks run ahead) before it is rejected as absurd.
    pub future_allowance_seconds: i64,
    /// The run fails (after writing everything) when rejected records pass
    /// this share of all records.
    pub max_reject_ratio: f64,
    /// Objects parsed at once; 0 means one per core.
    pub parallelism: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SilverSettings {
    /// Name of the environment variable holding the key of the IP hash; the
    /// key itself never sits in a file.
    pub ip_hash_key_env: String,
    /// Bronze rows processed at once: a shard's buckets are taken in groups
    /// small enough to stay under it, which bounds memory.
    pub max_rows_per_chunk: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricSettings {
    pub dedup_horizon_days: f64,
    pub session_timeout_seconds: f64,
    pub max_playback_rate: f64,
    pub jump_tolerance_seconds: f64,
    pub completion_threshold: f64,
    pub engagement_weights: EngagementWeights,
    pub engagement_tiers: EngagementTiers,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngagementWeights {
    pub unique: f64,
    pub reach: f64,
    pub completed: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngagementTiers {
    pub high: f64,
    pub medium: f64,
    pub low: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceSettings {
    /// Compaction bin-packs a partition's smaller files up to this size.
    pub target_file_mb: u64,
    /// Files no version of the last `retention_hours` can read are deleted
    /// (and orphans older than that); time travel reaches this far back.
    pub retention_hours: f64,
    /// Log entries older than this are removed (a checkpoint is kept).
    pub log_retention_hours: f64,
    /// Windows of the silver change log older than this are dropped: gold
    /// reruns of older windows then recompute nothing.
    pub change_log_retention_days: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            landing_url: "data/landing".into(),
            lake_url: "data/lake".into(),
            metadata_url: "metadata/video_metadata.csv".into(),
            buckets: 64,
            bronze: BronzeSettings::default(),
            silver: SilverSettings::default(),
            metrics: MetricSettings::default(),
            maintenance: MaintenanceSettings::default(),
        }
    }
}

impl Default for BronzeSettings {
    fn default() -> Self {
        BronzeSettings { max_line_bytes: 64 * 1024, future_allowance_seconds: 86_400, max_reject_ratio: 0.05, parallelism: 0 }
    }
}

impl Default for SilverSettings {
    fn default() -> Self {
        SilverSettings { ip_hash_key_env: "STREAMREEL_IP_HASH_KEY".into(), max_rows_per_chunk: 160_000 }
    }
}

impl Default for MetricSettings {
    fn default() -> Self {
        MetricSettings {
            dedup_horizon_days: 7.0,
            session_timeout_seconds: 1800.0,
            max_playback_rate: 2.0,
            jump_tolerance_seconds: 2.0,
            completion_threshold: 0.95,
            engagement_weights: EngagementWeights::default(),
            engagement_tiers: EngagementTiers::default(),
        }
    }
}

impl Default for EngagementWeights {
    fn default() -> Self {
        EngagementWeights { unique: 0.6, reach: 0.3, completed: 0.1 }
    }
}

impl Default for EngagementTiers {
    fn default() -> Self {
        EngagementTiers { high: 75.0, medium: 50.0, low: 25.0 }
    }
}

impl Default for MaintenanceSettings {
    fn default() -> Self {
        MaintenanceSettings { target_file_mb: 128, retention_hours: 168.0, log_retention_hours: 168.0, change_log_retention_days: 30.0 }
    }
}

impl Config {
    /// Reads a config file, applies the environment overrides, and resolves
    /// relative local paths against the file's own directory (so a worker
    /// started from any working directory finds the same data).
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| LakeError::ConfigRead { path: path.to_owned(), cause: e.to_string() })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        Config::from_yaml(&text, &base, |name| std::env::var(name).ok()).map_err(|e| match e {
            LakeError::ConfigParse { cause, .. } => LakeError::ConfigParse { path: path.to_owned(), cause },
            other => other,
        })
    }

    /// Parses YAML text; `env` looks up the override variables.
    pub fn from_yaml(text: &str, base_dir: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| LakeError::ConfigParse { path: PathBuf::new(), cause: e.to_string() })?
        };
        for (name, field) in
            [(ENV_LANDING_URL, &mut config.landing_url), (ENV_LAKE_URL, &mut config.lake_url), (ENV_METADATA_URL, &mut config.metadata_url)]
        {
            if let Some(value) = env(name).filter(|v| !v.is_empty()) {
                *field = value;
            }
            *field = resolve_location(field, base_dir);
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        for (name, url) in [("landing_url", &self.landing_url), ("lake_url", &self.lake_url), ("metadata_url", &self.metadata_url)] {
            Location::parse(url).map_err(|e| LakeError::ConfigInvalid(format!("{name}: {e}")))?;
        }
        let m = &self.metrics;
        let n = &self.maintenance;
        let checks = [
            ((1..=4096).contains(&self.buckets), "buckets must be between 1 and 4096"),
            (m.dedup_horizon_days >= 0.0, "metrics.dedup_horizon_days must be >= 0"),
            (m.session_timeout_seconds > 0.0, "metrics.session_timeout_seconds must be > 0"),
            (m.max_playback_rate >= 1.0, "metrics.max_playback_rate must be >= 1"),
            (m.jump_tolerance_seconds >= 0.0, "metrics.jump_tolerance_seconds must be >= 0"),
            (m.completion_threshold > 0.0 && m.completion_threshold <= 1.0, "metrics.completion_threshold must be in (0, 1]"),
            (
                m.engagement_tiers.high >= m.engagement_tiers.medium && m.engagement_tiers.medium >= m.engagement_tiers.low,
                "metrics.engagement_tiers must satisfy high >= medium >= low",
            ),
            (self.bronze.max_line_bytes > 0, "bronze.max_line_bytes must be > 0"),
            (self.silver.max_rows_per_chunk > 0, "silver.max_rows_per_chunk must be > 0"),
            ((0.0..=1.0).contains(&self.bronze.max_reject_ratio), "bronze.max_reject_ratio must be in [0, 1]"),
            (n.target_file_mb > 0, "maintenance.target_file_mb must be > 0"),
            (n.retention_hours >= 0.0 && n.log_retention_hours >= 0.0, "maintenance retention hours must be >= 0"),
            (n.change_log_retention_days >= 0.0, "maintenance.change_log_retention_days must be >= 0"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(LakeError::ConfigInvalid((*message).to_string())),
            None => Ok(()),
        }
    }

    pub fn lake(&self) -> Result<Location> {
        Location::parse(&self.lake_url)
    }

    pub fn landing(&self) -> Result<Location> {
        Location::parse(&self.landing_url)
    }
}

/// A URL is kept as written; a relative local path is anchored at `base`.
/// An empty location stays empty so that validation names it.
fn resolve_location(location: &str, base: &Path) -> String {
    if location.trim().is_empty() || looks_like_url(location) || Path::new(location).is_absolute() {
        return location.to_string();
    }
    base.join(location).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// The embedded-default file documents every setting: it must state
    /// exactly the defaults (only its locations differ).
    #[test]
    fn the_embedded_default_file_states_the_defaults() {
        let text = include_str!("../../../infra/config/local.yaml");
        let parsed = Config::from_yaml(text, Path::new("/repo/infra/config"), no_env).expect("local.yaml parses");
        let locations = Config {
            landing_url: parsed.landing_url.clone(),
            lake_url: parsed.lake_url.clone(),
            metadata_url: parsed.metadata_url.clone(),
            ..Config::default()
        };
        assert_eq!(parsed, locations);
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let config = Config::from_yaml("", Path::new("/etc/sr"), no_env).unwrap();
        assert_eq!(config.metrics.dedup_horizon_days, 7.0);
        assert_eq!(config.metrics.session_timeout_seconds, 1800.0);
        assert_eq!(config.metrics.max_playback_rate, 2.0);
        assert_eq!(config.metrics.jump_tolerance_seconds, 2.0);
        assert_eq!(config.metrics.completion_threshold, 0.95);
        assert_eq!(config.metrics.engagement_weights.unique, 0.6);
        assert_eq!(config.metrics.engagement_tiers.low, 25.0);
        assert_eq!(config.buckets, 64);
        assert_eq!(config.lake_url, "/etc/sr/data/lake");
    }

    #[test]
    fn unknown_key_is_an_error_that_names_it() {
        let err = Config::from_yaml("metrics:\n  session_timout_seconds: 5\n", Path::new("."), no_env).unwrap_err().to_string();
        assert!(err.contains("session_timout_seconds"), "{err}");
    }

    #[test]
    fn environment_overrides_locations_and_urls_are_kept() {
        let env = |name: &str| (name == ENV_LAKE_URL).then(|| "s3://bucket/lake".to_string());
        let config = Config::from_yaml("lake_url: /tmp/x\nlanding_url: in\n", Path::new("/base"), env).unwrap();
        assert_eq!(config.lake_url, "s3://bucket/lake");
        assert_eq!(config.landing_url, "/base/in");
    }

    #[test]
    fn partial_sections_keep_their_other_defaults() {
        let yaml = "metrics:\n  session_timeout_seconds: 600\n  engagement_weights: {unique: 0.5}\n";
        let config = Config::from_yaml(yaml, Path::new("."), no_env).unwrap();
        assert_eq!(config.metrics.session_timeout_seconds, 600.0);
        assert_eq!(config.metrics.max_playback_rate, 2.0);
        assert_eq!(config.metrics.engagement_weights.unique, 0.5);
        assert_eq!(config.metrics.engagement_weights.reach, 0.3);
    }

    #[test]
    fn inconsistent_settings_and_bad_locations_are_refused() {
        let err = Config::from_yaml("metrics:\n  completion_threshold: 1.5\n", Path::new("."), no_env).unwrap_err();
        assert!(err.to_string().contains("completion_threshold"));
        for yaml in ["lake_url: s3:/bucket/lake\n", "lake_url: \"\"\n", "landing_url: s3://\n", "buckets: 0\n"] {
            let err = Config::from_yaml(yaml, Path::new("/base"), no_env).unwrap_err().to_string();
            assert!(err.contains("lake_url") || err.contains("landing_url") || err.contains("buckets"), "{yaml}: {err}");
        }
    }
}
