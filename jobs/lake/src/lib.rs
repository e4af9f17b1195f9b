//! The storage layer every StreamReel worker runs on: typed configuration,
//! run windows and shards, storage locations, Delta tables (open, scan,
//! write, commit onto the planned snapshot), rows encoded through serde,
//! CPU work spread over the cores, local scratch files, logging and the run report. It knows
//! nothing of StreamReel's own tables: those are the `streamreel-tables`
//! contract.

pub mod config;
pub mod cores;
pub mod error;
pub mod location;
pub mod replan;
pub mod report;
pub mod rows;
pub mod shard;
pub mod spill;
pub mod table;
pub mod telemetry;
pub mod time;
pub mod window;
pub mod worker;

pub use config::Config;
pub use error::{LakeError, Result};
pub use location::Location;
pub use shard::Shard;
pub use table::{Change, CommitMeta, DataFile, PartitionKey, Prune, ReadSet, RowFilter, Table, TableSpec, TableWriter};
pub use window::Window;

/// The arrow-rs and parquet versions that deltalake writes with; every crate
/// uses these re-exports so there is exactly one arrow in the build.
pub use deltalake::{arrow, parquet};

// Parsing and row building allocate many short strings; mimalloc keeps that
// off the profile in every binary and test that links the storage layer.
// Built without its transparent-huge-page advice (`no_thp`): each fresh
// region then cost a 2 MiB page zeroed in the kernel, 40-70 % of a quiet
// hourly run's CPU and a third of its memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_e`,
/// mimalloc.h of v3, which the bindings do not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps memory the process frees for its own later allocations instead of
/// handing it back to the kernel 10 ms later. A worker is a short process
/// whose footprint is its peak anyway; giving pages back and faulting them
/// in again zeroed was 13-20 % of silver's CPU (its chunks free and
/// allocate the same few hundred MiB over and over).
pub fn keep_freed_memory() {
    // SAFETY: sets one integer option; mimalloc reads it on its next purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}
