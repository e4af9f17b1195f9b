//! The end of every run: one human summary line in the log and one JSON run
//! report on stdout (its last line, which Airflow pushes to XCom).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::error::{LakeError, Result};

pub fn emit(summary: &str, report: &impl Serialize, file: Option<&Path>) -> Result<()> {
    tracing::info!("{summary}");
    let json = serde_json::to_string(report).map_err(|e| LakeError::Task(format!("run report: {e}")))?;
    if let Some(path) = file {
        std::fs::write(path, format!("{json}\n")).map_err(|e| LakeError::Task(format!("cannot write run report {}: {e}", path.display())))?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{json}").map_err(|e| LakeError::Task(format!("stdout: {e}")))?;
    Ok(())
}
