//! Fixtures for the tests: a throw-away lake on the local disk or in the S3
//! test bucket that `infra/bin/test` starts, landing objects, a table read
//! back as sorted rows of text, and the seed of a randomized test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Once;

use object_store::ObjectStoreExt;
use streamreel_lake::arrow::util::display::{ArrayFormatter, FormatOptions};
use streamreel_lake::worker::RunContext;
use streamreel_lake::{Config, Location, Shard, Table, TableSpec, Window};

/// Set by `infra/s3/start.sh` once the S3 test server is up.
pub const ENV_TEST_BUCKET: &str = "STREAMREEL_TEST_S3_BUCKET";
/// The variable test lakes read their IP hash key from.
pub const TEST_KEY_ENV: &str = "STREAMREEL_TEST_IP_KEY";
/// Set to rerun a randomized test with the seed it printed.
pub const ENV_FUZZ_SEED: &str = "STREAMREEL_FUZZ_SEED";

/// The seed of a randomized test: `STREAMREEL_FUZZ_SEED` when set, else
/// one from the clock. The test prints it, so any failure can be rerun.
pub fn fuzz_seed() -> u64 {
    match std::env::var(ENV_FUZZ_SEED) {
        Ok(seed) => seed.parse().unwrap_or_else(|_| panic!("{ENV_FUZZ_SEED} is a number, not {seed:?}")),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64 % 1_000_000_007,
    }
}

pub struct TestLake {
    pub config: Config,
    /// Holds a local lake's directory for the life of the test.
    pub dir: tempfile::TempDir,
}

/// The repository's `metadata/video_metadata.csv`, found from the package
/// under test. Read at run time: a compile-time path goes stale when a
/// cached target directory is shared by several clones.
pub fn sample_metadata() -> PathBuf {
    repository_file("metadata/video_metadata.csv")
}

/// A file of the repository, found upwards from the package under test.
pub fn repository_file(relative: &str) -> PathBuf {
    let package = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&package)
        .ancestors()
        .map(|dir| dir.join(relative))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("{relative} in a parent of {package}"))
}

impl TestLake {
    /// Landing and lake in a new temporary directory.
    pub fn local() -> TestLake {
        static KEY: Once = Once::new();
        // SAFETY: set once, before any test of the binary reads it.
        KEY.call_once(|| unsafe { std::env::set_var(TEST_KEY_ENV, "test-key") });
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            landing_url: dir.path().join("landing").to_string_lossy().into_owned(),
            lake_url: dir.path().join("lake").to_string_lossy().into_owned(),
            metadata_url: sample_metadata().to_string_lossy().into_owned(),
            ..Config::default()
        };
        config.silver.ip_hash_key_env = TEST_KEY_ENV.into();
        std::fs::create_dir_all(dir.path().join("landing")).expect("landing dir");
        TestLake { config, dir }
    }

    /// Landing and lake under a fresh prefix of the S3 test bucket. Panics
    /// with instructions when the server is not running: such tests are
    /// `#[ignore]`d and run by `infra/bin/test`.
    pub fn s3() -> TestLake {
        let bucket = std::env::var(ENV_TEST_BUCKET).expect("STREAMREEL_TEST_S3_BUCKET is not set: run the S3 tests through infra/bin/test");
        let prefix = uuid::Uuid::new_v4();
        let mut lake = TestLake::local();
        lake.config.landing_url = format!("s3://{bucket}/{prefix}/landing");
        lake.config.lake_url = format!("s3://{bucket}/{prefix}/lake");
        lake
    }

    pub fn lake(&self) -> Location {
        Location::parse(&self.config.lake_url).expect("lake url")
    }

    /// Writes a landing object under the folder of `hour` (e.g. `2025-08-11T14`).
    pub async fn put(&self, hour: &str, name: &str, bytes: impl Into<Vec<u8>>) {
        let landing = Location::parse(&self.config.landing_url).expect("landing url");
        let (store, root) = landing.object_store().expect("landing store");
        let hour = Window::hour(hour).expect("hour").start;
        let path = format!("{root}/{}/{name}", hour.format("year=%Y/month=%m/day=%d/hour=%H"));
        let bytes: Vec<u8> = bytes.into();
        store.put(&object_store::path::Path::from(path.trim_start_matches('/')), bytes.into()).await.expect("put landing object");
    }

    /// The context of a run of `worker` over `window` (one shard of all).
    /// The context of a run of `worker` over `window` by one process.
    pub fn context(&self, worker: &'static str, window: Window) -> RunContext {
        RunContext::new(worker, self.config.clone(), window, None, None).expect("run context")
    }

    /// The context of one shard's run (`--shard I/N`).
    pub fn shard_context(&self, worker: &'static str, window: Window, shard: Shard) -> RunContext {
        RunContext::new(worker, self.config.clone(), window, Some(shard), None).expect("run context")
    }

    /// Every row of a table as text, sorted: see [`table_rows`].
    pub async fn rows(&self, spec: &'static TableSpec, skip: &[&str]) -> Vec<String> {
        table_rows(&self.config, spec, skip).await
    }
}

pub fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// Every row of a table as text, sorted: two tables with the same rows give
/// the same list, whatever their files. Columns in `skip` are left out.
pub async fn table_rows(config: &Config, spec: &'static TableSpec, skip: &[&str]) -> Vec<String> {
    let lake = Location::parse(&config.lake_url).expect("lake url");
    let table = Table::open(&lake, spec, config.buckets).await.expect("table");
    let batches = table.scan(table.files().to_vec()).read().await.expect("read");
    let options = FormatOptions::default().with_null("∅");
    let mut rows = Vec::new();
    for batch in &batches {
        let kept: Vec<usize> = (0..batch.num_columns()).filter(|&i| !skip.contains(&batch.schema().field(i).name().as_str())).collect();
        let formatters: Vec<ArrayFormatter> =
            kept.iter().map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &options).expect("formatter")).collect();
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join(" | "));
        }
    }
    rows.sort();
    rows
}
