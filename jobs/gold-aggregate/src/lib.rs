//! `gold-aggregate`: coming in its own issue.
