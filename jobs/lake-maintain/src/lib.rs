//! `lake-maintain`: compaction, vacuum and log cleanup of the lake (not yet written).
