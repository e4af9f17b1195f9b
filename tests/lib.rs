//! End-to-end golden scenarios live in `golden/` (one folder per case: the
//! landed `events.jsonl` and the expected rows as CSV); `golden.rs` runs them
//! through the real workers. This library is empty.
