//! What the hand-written batch builders of the busiest tables share (bronze
//! events, silver segments): finishing a column and keeping room for the
//! next batch.

use std::sync::Arc;

use streamreel_lake::arrow::array::{Array, ArrayRef, ArrowPrimitiveType, BooleanBuilder, PrimitiveBuilder, StringBuilder};

/// Finishes a column and leaves its builder with room for `rows` rows of
/// texts as long as this batch's, and an eighth more: the next batch is about
/// as large, and growing from empty copied its bytes several times, as did
/// outgrowing an exact fit by one byte (the buffer doubled and was copied
/// whole).
pub(crate) fn finish_text(builder: &mut StringBuilder, rows: usize) -> ArrayRef {
    let array = builder.finish();
    let bytes = array.values().len() * rows / array.len().max(1);
    *builder = StringBuilder::with_capacity(rows, bytes + bytes / 8);
    Arc::new(array)
}

pub(crate) fn finish_numbers<T: ArrowPrimitiveType>(builder: &mut PrimitiveBuilder<T>, rows: usize) -> ArrayRef {
    let array = builder.finish();
    *builder = PrimitiveBuilder::with_capacity(rows).with_data_type(array.data_type().clone());
    Arc::new(array)
}

pub(crate) fn finish_flags(builder: &mut BooleanBuilder, rows: usize) -> ArrayRef {
    let array = builder.finish();
    *builder = BooleanBuilder::with_capacity(rows);
    Arc::new(array)
}
