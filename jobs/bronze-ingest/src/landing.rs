//! The landing objects of a window: every object under the window's hour
//! folders, read whatever its name, except hidden and in-flight ones
//! (a path component starting with `_` or `.`, or a name ending in `.tmp`),
//! which are listed in the run report instead.

use futures::TryStreamExt;
use object_store::path::Path;
use streamreel_lake::{LakeError, Location, Shard, Window};
use streamreel_tables::bronze::{LandingPartition, hour_folder};

use crate::error::BronzeError;

#[derive(Debug, Clone)]
pub struct LandingObject {
    pub partition: LandingPartition,
    /// Where it is in the store.
    pub path: Path,
    /// Relative to the landing root: the rows' `source_object`.
    pub name: String,
}

#[derive(Debug, Default)]
pub struct Listing {
    /// This shard's objects, by partition and name.
    pub objects: Vec<LandingObject>,
    /// This shard's hidden and in-flight objects, not read.
    pub skipped: Vec<String>,
}

/// Whether an object below its hour folder is hidden or still being written.
pub fn is_hidden(below_hour: &str) -> bool {
    below_hour.split('/').any(|part| part.starts_with('_') || part.starts_with('.')) || below_hour.ends_with(".tmp")
}

pub async fn list_window(landing: &Location, window: Window, buckets: u32, shard: Shard) -> Result<Listing, BronzeError> {
    if let Some(dir) = landing.local_path()
        && !dir.is_dir()
    {
        return Err(BronzeError::LandingRoot(landing.to_string()));
    }
    let (store, root) = landing.object_store()?;
    let mut listing = Listing::default();
    for hour in window.hours() {
        let folder = hour_folder(hour);
        let prefix = Path::from(format!("{root}/{folder}").trim_start_matches('/'));
        let listed: Vec<object_store::ObjectMeta> = match store.list(Some(&prefix)).try_collect().await {
            Ok(listed) => listed,
            // A local landing hour that was never written is simply empty.
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(LakeError::storage(landing, e).into()),
        };
        for meta in listed {
            let full = meta.location.to_string();
            let name = full.strip_prefix(root.as_ref()).unwrap_or(&full).trim_start_matches('/').to_string();
            let below_hour = name.strip_prefix(&folder).unwrap_or(&name).trim_start_matches('/');
            let partition = LandingPartition::of(hour, &name, buckets);
            if !shard.owns(partition.object_bucket) {
                continue;
            }
            if is_hidden(below_hour) {
                listing.skipped.push(name);
            } else {
                listing.objects.push(LandingObject { partition, path: meta.location, name });
            }
        }
    }
    listing.objects.sort_by(|a, b| (a.partition, &a.name).cmp(&(b.partition, &b.name)));
    listing.skipped.sort();
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_in_flight_objects_are_recognised_by_name() {
        for name in ["_SUCCESS", ".part-1.crc", "_temporary/0/part-1", "events.json.gz.tmp", ".hidden/x.json"] {
            assert!(is_hidden(name), "{name}");
        }
        for name in ["part-0003", "events.txt", "a.json.gz", "sub/dir/events", "x_y.json"] {
            assert!(!is_hidden(name), "{name}");
        }
    }
}
