//! The worker binaries as an operator runs them: a config file, a window,
//! flags and environment; their output checked for success without ERROR.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use streamreel_lake::Window;
use streamreel_lake::table::commit::KILL_AT_ENV;
use streamreel_testkit::{TEST_KEY_ENV, TestLake};

/// The release binaries cargo built beside the test.
pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::current_exe().expect("test binary").parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build the workspace's binaries first (cargo build --release --workspace --bins)", path.display());
    path
}

/// The lake's settings as a config file beside it.
pub fn write_config(lake: &TestLake) -> PathBuf {
    let path = lake.dir.path().join("config.yaml");
    std::fs::write(
        &path,
        format!("landing_url: {}\nlake_url: {}\nmetadata_url: {}\n", lake.config.landing_url, lake.config.lake_url, lake.config.metadata_url),
    )
    .expect("config file");
    path
}

/// `worker --config CONFIG --from … --to … EXTRA` with the test's hash key
/// and info logs (AWS_* and the rest of the environment inherited).
pub fn command(worker: &str, config: &Path, window: Window, extra: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(bin(worker));
    command.arg("--config").arg(config).args(["--from", &fmt(window.start), "--to", &fmt(window.end)]).args(extra);
    command.env(TEST_KEY_ENV, "test-key").env("STREAMREEL_IP_HASH_KEY", "test-key").env("RUST_LOG", "info").env_remove(KILL_AT_ENV);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

pub fn run(worker: &str, config: &Path, window: Window, extra: &[&str], env: &[(&str, &str)]) -> Output {
    command(worker, config, window, extra, env).output().expect("the worker starts")
}

pub fn fmt(t: chrono::DateTime<chrono::Utc>) -> String {
    streamreel_lake::window::format_hour(t)
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The run succeeded and logged no ERROR.
pub fn succeeded(worker: &str, output: &Output) {
    assert!(output.status.success(), "{worker} failed:\n{}", stderr(output));
    let text = stderr(output);
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "a successful {worker} logged errors: {errors:?}");
}
