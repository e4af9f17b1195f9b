//! What the StreamReel workers share: typed configuration, the run window,
//! storage locations, Delta table I/O, the event vocabulary, CPU work spread
//! over the cores, tracing and the run report.

pub mod cli;
pub mod config;
pub mod cores;
pub mod delta;
pub mod error;
pub mod event_type;
pub mod report;
pub mod storage;
pub mod telemetry;
pub mod testing;
pub mod window;

pub use config::Config;
pub use error::{LakeError, Result};
pub use event_type::EventType;
pub use window::Window;

/// The arrow-rs and parquet versions that deltalake writes with; every crate
/// uses these re-exports so there is exactly one arrow in the build.
pub use deltalake::{arrow, parquet};
