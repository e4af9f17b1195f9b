//! The storage layer's error type. Every variant names what it was working on
//! (a table, a file, a window) and renders as one line: causes are kept as
//! cleaned text, not as a chain, so a failure never repeats its cause.

use std::path::PathBuf;

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("cannot read config file {path}: {cause}")]
    ConfigRead { path: PathBuf, cause: String },
    #[error("invalid config file {path}: {cause}")]
    ConfigParse { path: PathBuf, cause: String },
    #[error("invalid config: {0}")]
    ConfigInvalid(String),
    #[error("invalid window: {0}")]
    Window(String),
    #[error("invalid shard {text:?}: {reason}")]
    Shard { text: String, reason: String },
    #[error("invalid storage URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("storage error at {url}: {cause}")]
    Storage { url: String, cause: String },
    #[error("table {table}: cannot write {file}: {cause}")]
    Write { table: String, file: String, cause: String },
    #[error("table {table}: cannot read {file}: {cause}")]
    Read { table: String, file: String, cause: String },
    #[error("table {table}: {cause}")]
    Delta { table: String, cause: String },
    /// A concurrent commit changed what this run planned from; the stage
    /// plans again or gives up with this line.
    #[error("table {table}: {detail}")]
    Conflict { table: String, detail: String },
    #[error("table {table} holds rows in {found} buckets, but the config says buckets: {configured}; the bucket count of a lake cannot change")]
    Buckets { table: String, found: String, configured: u32 },
    #[error("{context}: {cause}")]
    Data { context: String, cause: String },
    #[error("local scratch file {path}: {cause}")]
    Spill { path: PathBuf, cause: String },
    #[error("a worker task failed: {0}")]
    Task(String),
}

impl LakeError {
    pub fn storage(url: impl std::fmt::Display, cause: impl std::fmt::Display) -> Self {
        LakeError::Storage { url: url.to_string(), cause: clean(&cause) }
    }

    pub fn delta(table: impl std::fmt::Display, cause: impl std::fmt::Display) -> Self {
        LakeError::Delta { table: table.to_string(), cause: clean(&cause) }
    }

    pub fn data(context: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        LakeError::Data { context: context.into(), cause: clean(&cause) }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, LakeError::Conflict { .. })
    }
}

/// Longest cause kept in an error line.
const MAX_CAUSE: usize = 400;

/// One line of text for an error cause: whitespace collapsed, an S3 XML
/// body reduced to its code and message, repeated clauses dropped, capped.
pub fn clean(cause: &dyn std::fmt::Display) -> String {
    let text = cause.to_string();
    let mut text = match text.find("<?xml") {
        Some(at) => {
            let tag = |name: &str| {
                let open = format!("<{name}>");
                let body = &text[at..];
                body.find(&open)
                    .and_then(|s| body[s + open.len()..].find(&format!("</{name}>")).map(|e| body[s + open.len()..s + open.len() + e].to_string()))
            };
            let summary: Vec<String> = [tag("Code"), tag("Message")].into_iter().flatten().collect();
            format!("{} {}", text[..at].trim_end(), summary.join(": "))
        }
        None => text,
    };
    text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // "a: b: b" chains from libraries that print their source twice.
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split(": ") {
        if !parts.last().is_some_and(|last| last.contains(part)) {
            parts.push(part);
        }
    }
    let mut line = parts.join(": ");
    if line.len() > MAX_CAUSE {
        let mut end = MAX_CAUSE;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_xml_bodies_shrink_to_code_and_message() {
        let raw = "Error performing PUT http://x/b/k in 1ms - Client error with status 403 Forbidden: <?xml version=\"1.0\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1</RequestId></Error>";
        let line = clean(&raw);
        assert!(line.ends_with("AccessDenied: Access Denied"), "{line}");
        assert!(!line.contains('\n') && !line.contains("RequestId"));
    }

    #[test]
    fn repeated_causes_appear_once_and_long_ones_are_capped() {
        assert_eq!(clean(&"write failed: disk full: disk full"), "write failed: disk full");
        assert!(clean(&"x".repeat(5000)).chars().count() <= MAX_CAUSE + 1);
    }
}
