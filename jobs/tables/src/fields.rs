//! Short constructors for the schemas' fields.

use std::sync::Arc;

use streamreel_lake::arrow::datatypes::{DataType, Field, TimeUnit};

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

pub fn float(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}

pub fn int(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}

pub fn int32(name: &str) -> Field {
    Field::new(name, DataType::Int32, false)
}

pub fn boolean(name: &str) -> Field {
    Field::new(name, DataType::Boolean, false)
}

pub fn date(name: &str) -> Field {
    Field::new(name, DataType::Date32, false)
}

pub fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp_type(), nullable)
}

/// A list column whose items are the nullable field every arrow list
/// builder makes by default, so the builders need no field of their own.
pub fn list(name: &str, item: DataType) -> Field {
    Field::new(name, DataType::List(Arc::new(Field::new_list_field(item, true))), false)
}
