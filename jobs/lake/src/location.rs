//! Storage locations: a local directory (the embedded default) or
//! `s3://bucket/prefix`, with credentials from the standard AWS environment.
//! Anything else, an empty string or a mistyped URL such as `s3:/bucket`,
//! is refused rather than read as a local path.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::error::{LakeError, Result};

/// AWS variables handed to the object stores; read from the environment at
/// run time, never from a file, and never logged.
const AWS_ENV_KEYS: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ALLOW_HTTP",
    "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
];

/// A directory-like place in a local file system or an S3 bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    url: Url,
}

/// Whether `text` starts like a URL (`scheme:`), as opposed to a plain path.
pub fn looks_like_url(text: &str) -> bool {
    let scheme_len = text.bytes().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')).count();
    scheme_len > 1 && text.as_bytes().first().is_some_and(u8::is_ascii_alphabetic) && text[scheme_len..].starts_with(':')
}

impl Location {
    /// `s3://bucket/prefix`, `file:///abs/dir`, or a local path.
    pub fn parse(text: &str) -> Result<Location> {
        let bad = |reason: &str| LakeError::Url { url: text.to_string(), reason: reason.to_string() };
        if text.trim().is_empty() {
            return Err(bad("it is empty: give a local path or s3://bucket/prefix"));
        }
        let mut url = if looks_like_url(text) {
            let (scheme, rest) = text.split_once(':').expect("a URL has a scheme");
            if !rest.starts_with("//") {
                return Err(bad("not a well-formed URL (expected s3://bucket/prefix or a local path)"));
            }
            let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
            match scheme.to_ascii_lowercase().as_str() {
                "s3" | "s3a" if url.host_str().is_some_and(|h| !h.is_empty()) => url,
                "s3" | "s3a" => return Err(bad("an S3 URL needs a bucket: s3://bucket/prefix")),
                "file" if url.host_str().is_none_or(str::is_empty) => url,
                "file" => return Err(bad("a file URL has no host: file:///absolute/path")),
                other => return Err(bad(&format!("unsupported scheme {other:?} (use s3:// or a local path)"))),
            }
        } else {
            let path = normalize(&std::path::absolute(FsPath::new(text)).map_err(|e| bad(&e.to_string()))?);
            Url::from_directory_path(&path).map_err(|_| bad("not a usable local path"))?
        };
        if url.scheme() == "s3a" {
            url = Url::parse(&url.as_str().replacen("s3a://", "s3://", 1)).map_err(|e| bad(&e.to_string()))?;
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Location { url })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn is_local(&self) -> bool {
        self.url.scheme() == "file"
    }

    /// A location below this one (`lake.join("bronze/events")`).
    pub fn join(&self, relative: &str) -> Location {
        let relative = relative.trim_matches('/');
        let url = self.url.join(&format!("{relative}/")).expect("a relative path always joins");
        Location { url }
    }

    /// The local directory, for a `file://` location.
    pub fn local_path(&self) -> Option<PathBuf> {
        self.is_local().then(|| self.url.to_file_path().ok()).flatten()
    }

    /// An object store and the prefix of this location inside it.
    pub fn object_store(&self) -> Result<(Arc<dyn ObjectStore>, Path)> {
        if let Some(dir) = self.local_path() {
            let prefix = Path::from(dir.to_string_lossy().trim_start_matches('/'));
            return Ok((Arc::new(LocalFileSystem::new()), prefix));
        }
        let bucket = self.url.host_str().unwrap_or_default();
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
        for (key, value) in aws_environment() {
            if let Ok(config_key) = key.to_ascii_lowercase().parse() {
                builder = builder.with_config(config_key, value);
            }
        }
        let store = builder.build().map_err(|e| LakeError::storage(self, e))?;
        Ok((Arc::new(store), Path::from(self.url.path().trim_matches('/'))))
    }

    /// Options deltalake needs to open a table here.
    pub fn delta_storage_options(&self) -> HashMap<String, String> {
        if self.is_local() { HashMap::new() } else { aws_environment().into_iter().collect() }
    }

    /// Reads a whole object named by this location (without the trailing
    /// slash a directory location carries).
    pub async fn read_file(text: &str) -> Result<Bytes> {
        let location = Location::parse(text)?;
        let (store, prefix) = location.object_store()?;
        let read = async { store.get(&prefix).await?.bytes().await };
        read.await.map_err(|e| LakeError::storage(&location, e))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.url.as_str();
        f.write_str(text.strip_suffix('/').unwrap_or(text))
    }
}

/// Resolves `.` and `..` lexically: URLs and object-store paths take no `..`.
fn normalize(path: &FsPath) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn aws_environment() -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = AWS_ENV_KEYS.iter().filter_map(|key| std::env::var(key).ok().map(|v| (key.to_string(), v))).collect();
    if !vars.iter().any(|(k, _)| k == "AWS_REGION") {
        let region = std::env::var("AWS_DEFAULT_REGION").unwrap_or_else(|_| "us-east-1".into());
        vars.push(("AWS_REGION".into(), region));
    }
    vars.retain(|(k, _)| k != "AWS_DEFAULT_REGION");
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_become_directory_urls() {
        let loc = Location::parse("/tmp/lake").unwrap();
        assert!(loc.is_local());
        assert_eq!(loc.url().as_str(), "file:///tmp/lake/");
        assert_eq!(loc.join("bronze/events").to_string(), "file:///tmp/lake/bronze/events");
        assert_eq!(Location::parse("/work/repo/infra/config/../../data/lake").unwrap().to_string(), "file:///work/repo/data/lake");
    }

    #[test]
    fn s3_urls_keep_bucket_and_prefix() {
        let loc = Location::parse("s3://bucket/some/prefix").unwrap();
        assert!(!loc.is_local());
        assert_eq!(loc.join("gold/x").to_string(), "s3://bucket/some/prefix/gold/x");
        assert_eq!(Location::parse("s3a://b/p").unwrap().to_string(), "s3://b/p");
    }

    #[test]
    fn mistyped_and_empty_locations_are_refused() {
        for text in ["", "  ", "s3:/bucket/lake", "s3:bucket", "s3:///nobucket", "gs://b/p", "http://host/x"] {
            assert!(Location::parse(text).is_err(), "{text:?} was accepted");
        }
        assert!(looks_like_url("s3:/bucket") && !looks_like_url("data/lake") && !looks_like_url("/abs/x:y"));
    }
}
