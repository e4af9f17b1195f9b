//! The end of every run: its numbers logged as fields of one event, and a
//! JSON run report as the last line of stdout (what Airflow pushes to XCom).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{LakeError, Result};

/// What every worker's run report provides.
pub trait RunReport: Serialize {
    /// Logs the run's summary line with its numbers as fields.
    fn log_summary(&self);

    /// A finished run can still fail its exit code (too many rejects): the
    /// report is written first.
    fn verdict(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// Prints the report as the last stdout line (and to `file`).
pub fn emit(report: &impl Serialize, file: Option<&Path>) -> Result<()> {
    let json = serde_json::to_string(report).map_err(|e| LakeError::Task(format!("run report: {e}")))?;
    if let Some(path) = file {
        std::fs::write(path, format!("{json}\n")).map_err(|e| LakeError::Task(format!("cannot write run report {}: {e}", path.display())))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{json}").map_err(|e| LakeError::Task(format!("stdout: {e}")))?;
    Ok(())
}
