//! Helpers for the workers' integration tests: a throw-away lake on the local
//! disk or in the S3 test bucket that `infra/bin/test` starts.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Set by `infra/s3/start.sh` once the S3 test server is up.
pub const ENV_TEST_BUCKET: &str = "STREAMREEL_TEST_S3_BUCKET";

pub struct TestLake {
    pub config: Config,
    /// Holds a local lake's directory for the life of the test.
    _dir: tempfile::TempDir,
}

/// The repository's `metadata/video_metadata.csv`, found from the package
/// under test. Read at run time: a compile-time path goes stale when a
/// cached target directory is shared by several clones.
pub fn sample_metadata() -> PathBuf {
    let package = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    Path::new(&package)
        .ancestors()
        .map(|dir| dir.join("metadata/video_metadata.csv"))
        .find(|csv| csv.exists())
        .expect("metadata/video_metadata.csv in a parent of the package")
}

impl TestLake {

    /// Landing and lake in a new temporary directory.
    pub fn local() -> TestLake {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            landing_url: dir.path().join("landing").to_string_lossy().into_owned(),
            lake_url: dir.path().join("lake").to_string_lossy().into_owned(),
            metadata_url: sample_metadata().to_string_lossy().into_owned(),
            ..Config::default()
        };
        TestLake { config, _dir: dir }
    }

    /// Landing and lake under a fresh prefix of the S3 test bucket. Panics
    /// with instructions when the server is not running: such tests are
    /// `#[ignore]`d and run by `infra/bin/test`.
    pub fn s3() -> TestLake {
        let bucket = std::env::var(ENV_TEST_BUCKET)
            .expect("STREAMREEL_TEST_S3_BUCKET is not set: run the S3 tests through infra/bin/test");
        let prefix = uuid::Uuid::new_v4();
        let mut lake = TestLake::local();
        lake.config.landing_url = format!("s3://{bucket}/{prefix}/landing");
        lake.config.lake_url = format!("s3://{bucket}/{prefix}/lake");
        lake
    }
}

/// Every row of a table as text, sorted: two tables with the same rows give
/// the same list, whatever their files. Columns in `skip` are left out.
pub async fn table_rows(lake_url: &str, spec: &crate::delta::TableSpec, skip: &[&str]) -> Vec<String> {
    use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};
    let lake = crate::storage::Location::parse(lake_url).expect("lake url");
    let table = crate::delta::Table::open_or_create(&lake, spec).await.expect("table");
    let batches = table.read(&table.files().expect("files"), None).await.expect("read");
    let options = FormatOptions::default().with_null("∅");
    let mut rows = Vec::new();
    for batch in &batches {
        let kept: Vec<usize> = (0..batch.num_columns()).filter(|&i| !skip.contains(&batch.schema().field(i).name().as_str())).collect();
        let formatters: Vec<ArrayFormatter> = kept.iter().map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &options).expect("formatter")).collect();
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join(" | "));
        }
    }
    rows.sort();
    rows
}
