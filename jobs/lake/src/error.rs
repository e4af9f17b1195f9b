//! The error type of the shared library: every variant names what it was
//! working on (a file, a table, a window) so a failed run says where.

use std::path::PathBuf;

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("cannot read config file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    ConfigParse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("invalid config: {0}")]
    ConfigInvalid(String),
    #[error("invalid window: {0}")]
    Window(String),
    #[error("invalid storage URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    // The large sources are boxed: every Result of the workers carries this type.
    #[error("storage error at {url}: {source}")]
    Storage {
        url: String,
        source: Box<object_store::Error>,
    },
    #[error("delta table {table}: {source}")]
    Delta {
        table: String,
        source: Box<deltalake::DeltaTableError>,
    },
    #[error("delta table {table}: commit still conflicting after {attempts} attempts")]
    CommitConflict { table: String, attempts: usize },
    #[error("parquet file {file}: {source}")]
    Parquet {
        file: String,
        source: deltalake::parquet::errors::ParquetError,
    },
    #[error("arrow data for {context}: {source}")]
    Arrow {
        context: String,
        source: deltalake::arrow::error::ArrowError,
    },
    #[error("a worker task failed: {0}")]
    Task(String),
}

impl LakeError {
    pub fn delta(table: impl std::fmt::Display, source: deltalake::DeltaTableError) -> Self {
        LakeError::Delta {
            table: table.to_string(),
            source: Box::new(source),
        }
    }

    pub fn arrow(context: impl Into<String>, source: deltalake::arrow::error::ArrowError) -> Self {
        LakeError::Arrow {
            context: context.into(),
            source,
        }
    }
}
