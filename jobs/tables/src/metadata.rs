//! The video metadata CSV (`title_id, title, genre, creator,
//! duration_seconds`, and any other columns): one reader, used by silver,
//! gold and the simulator.

use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("video metadata {file}: {detail}")]
    Invalid { file: String, detail: String },
    #[error(transparent)]
    Storage(#[from] streamreel_lake::LakeError),
}

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

#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// Looked up for every event and segment: `ahash` (seeded per process)
    /// costs a fraction of the standard SipHash there.
    videos: HashMap<String, VideoMetadata, ahash::RandomState>,
    /// In the file's order.
    order: Vec<String>,
}

impl Metadata {
    /// Reads the CSV at `url` (a local path or `s3://…`).
    pub async fn load(url: &str) -> Result<Metadata, MetadataError> {
        Metadata::parse(&streamreel_lake::Location::read_file(url).await?, url)
    }

    /// Parses the CSV. A `title_id` that appears twice is an error naming
    /// both lines: which row wins would otherwise be an accident.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Metadata, MetadataError> {
        let bad = |detail: String| MetadataError::Invalid { file: source.to_string(), detail };
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(bytes);
        let headers: Vec<String> = reader.headers().map_err(|e| bad(e.to_string()))?.iter().map(str::to_string).collect();
        let column = |name: &str| headers.iter().position(|h| h == name).ok_or_else(|| bad(format!("no {name} column")));
        let (id, title, genre, creator, duration) =
            (column("title_id")?, column("title")?, column("genre")?, column("creator")?, column("duration_seconds")?);
        let mut metadata = Metadata::default();
        let mut lines: HashMap<String, u64> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let line = record.position().map(|p| p.line()).unwrap_or_default();
            let field = |i: usize| record.get(i).filter(|v| !v.is_empty()).map(str::to_string);
            let Some(title_id) = field(id) else { continue };
            if let Some(first) = lines.insert(title_id.clone(), line) {
                return Err(bad(format!("title_id {title_id:?} appears twice, on line {first} and line {line}")));
            }
            let duration_seconds = match field(duration) {
                None => None,
                Some(text) => Some(
                    text.parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && *d > 0.0)
                        .ok_or_else(|| bad(format!("line {line}: duration_seconds {text:?} is not a positive number")))?,
                ),
            };
            let extra: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .enumerate()
                .filter(|(i, _)| ![id, title, genre, creator, duration].contains(i))
                .map(|(i, name)| (name.clone(), record.get(i).unwrap_or_default().into()))
                .collect();
            metadata.order.push(title_id.clone());
            metadata.videos.insert(
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
        Ok(metadata)
    }

    pub fn get(&self, title_id: &str) -> Option<&VideoMetadata> {
        self.videos.get(title_id)
    }

    pub fn duration(&self, title_id: &str) -> Option<f64> {
        self.videos.get(title_id).and_then(|v| v.duration_seconds)
    }

    pub fn contains(&self, title_id: &str) -> bool {
        self.videos.contains_key(title_id)
    }

    /// Titles in the file's order, with their metadata.
    pub fn titles(&self) -> impl Iterator<Item = (&str, &VideoMetadata)> {
        self.order.iter().map(|id| (id.as_str(), &self.videos[id]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_columns_are_kept_and_bad_durations_refused() {
        let csv = "title_id,title,genre,creator,duration_seconds,release_year\nv1,One,Drama,Ann,300,2020\nv2,Two,,Bob,,\n";
        let metadata = Metadata::parse(csv.as_bytes(), "test").unwrap();
        assert_eq!(metadata.duration("v1"), Some(300.0));
        assert_eq!(metadata.duration("v2"), None);
        assert_eq!(metadata.get("v1").unwrap().extra, r#"{"release_year":"2020"}"#);
        assert_eq!(metadata.get("v2").unwrap().genre, None);
        assert_eq!(metadata.titles().map(|(id, _)| id).collect::<Vec<_>>(), ["v1", "v2"]);
        let bad = "title_id,title,genre,creator,duration_seconds\nv1,One,Drama,Ann,-5\n";
        assert!(Metadata::parse(bad.as_bytes(), "test").is_err());
        assert!(Metadata::parse(b"title_id,title\nv1,x\n", "test").is_err());
    }

    #[test]
    fn a_duplicate_title_names_both_lines() {
        let csv = "title_id,title,genre,creator,duration_seconds\nv1,One,Drama,Ann,1632\nv2,Two,Drama,Ann,60\nv1,Again,Drama,Ann,1\n";
        let err = Metadata::parse(csv.as_bytes(), "meta.csv").unwrap_err().to_string();
        assert!(err.contains("\"v1\"") && err.contains("line 2") && err.contains("line 4"), "{err}");
    }
}
