//! `silver-enrich`: coming in its own issue.
