//! Rows to record batches and back, derived from serde: a row struct whose
//! fields are named like a table's columns encodes into its schema (i64 into
//! UTC microsecond timestamps, i32 into dates, `Vec` into lists), so no
//! column list is written by hand.

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::{FieldRef, SchemaRef};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{LakeError, Result};

/// Encodes `rows` into a batch of `schema`.
pub fn encode<T: Serialize>(schema: &SchemaRef, rows: &[T]) -> Result<RecordBatch> {
    let fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    serde_arrow::to_record_batch(&fields, &rows).map_err(|e| LakeError::data(format!("encoding rows as {}", type_name::<T>()), e))
}

/// Decodes every row of `batch` (columns the row type lacks are ignored).
pub fn decode<T: DeserializeOwned>(batch: &RecordBatch) -> Result<Vec<T>> {
    serde_arrow::from_record_batch(batch).map_err(|e| LakeError::data(format!("decoding rows as {}", type_name::<T>()), e))
}

fn type_name<T>() -> &'static str {
    std::any::type_name::<T>().rsplit("::").next().unwrap_or("rows")
}

/// `-0.0` as `0.0`: sums of nothing are negative zero in IEEE arithmetic,
/// which BI tools print as "-0".
pub fn positive_zero(value: f64) -> f64 {
    value + 0.0
}

/// Encodes rows one at a time, for streams whose rows borrow from a buffer
/// that is reused (bronze's decompressed lines).
pub struct RowBuilder {
    builder: serde_arrow::ArrayBuilder,
    rows: usize,
}

impl RowBuilder {
    pub fn new(schema: &SchemaRef) -> Result<RowBuilder> {
        let fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
        let builder = serde_arrow::ArrayBuilder::from_arrow(&fields).map_err(|e| LakeError::data("building rows", e))?;
        Ok(RowBuilder { builder, rows: 0 })
    }

    pub fn push(&mut self, row: &impl Serialize) -> Result<()> {
        self.rows += 1;
        self.builder.push(row).map_err(|e| LakeError::data("building rows", e))
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The rows pushed so far; the builder starts over empty.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.rows = 0;
        self.builder.to_record_batch().map_err(|e| LakeError::data("building rows", e))
    }
}
