//! End-to-end tests: the `sextant` binary as users and other tools run it.

// Tests unwrap: a panic is a failure with a message.
#![allow(clippy::unwrap_used)]

mod cli;
mod collect;
mod conformance;
mod dashboard;
mod demo;
mod drift;
mod edge;
#[path = "../../crates/edge/tests/it/guests.rs"]
mod guests;
mod profile;
mod tls;
mod validate;
mod web;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/runtime/test_data")
}

pub fn fixture(name: &str) -> PathBuf {
    test_data().join("models").join(name)
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `sextant` with `args`; a panic is always a test failure, whatever the exit status.
pub fn sextant(args: &[&str]) -> Run {
    sextant_with_env(args, &[])
}

/// `sextant` with these environment variables set for it.
pub fn sextant_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .envs(env.iter().copied())
        .output()
        .expect("sextant starts");
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "sextant {args:?} panicked:\n{}", run.stderr);
    run
}

pub fn json(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout))
}

/// Whether a GPU adapter exists here; see the runtime's tests for the `SEXTANT_REQUIRE_GPU` contract.
pub fn gpu_available() -> bool {
    let run = sextant(&["inspect", "--json", "--dim", "N=1", fixture("digits_mlp/model.onnx").to_str().unwrap()]);
    let reason = json(&run)["engines"]["gpu"]["reason"].as_str().unwrap_or_default().to_owned();
    if reason.contains("no GPU adapter") || reason.contains("device could not be opened") {
        assert!(std::env::var_os("SEXTANT_REQUIRE_GPU").is_none(), "SEXTANT_REQUIRE_GPU is set but: {reason}");
        eprintln!("\n\n*** SKIPPED: no GPU adapter on this machine; GPU checks did not run ***\n\n");
        return false;
    }
    true
}

/// Chromium and a `www/tests` script, or `None` (skipping loudly) where a tool is missing: Node,
/// `npm ci --prefix www`, Chromium (`SEXTANT_CHROMIUM`, else `chromium` on PATH), or a file of
/// `needs` (relative to the repository, e.g. the built `pkg/`). With `SEXTANT_REQUIRE_BROWSER` set
/// (CI sets it) a missing tool fails the test instead.
pub fn browser_tools(script: &str, needs: &[(&str, &str)]) -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var_os("SEXTANT_CHROMIUM").map(PathBuf::from).or_else(|| {
        ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
            std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join(name)).find(|p| p.is_file())
        })
    });
    let node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let missing = if chromium.is_none() {
        Some("Chromium (apt-get install chromium, or set SEXTANT_CHROMIUM)")
    } else if !root.join("www/node_modules/playwright-core").is_dir() {
        Some("www/node_modules (npm ci --prefix www)")
    } else if !node {
        Some("Node")
    } else {
        needs.iter().find(|(file, _)| !root.join(file).exists()).map(|(_, what)| *what)
    };
    let Some(missing) = missing else { return chromium.map(|c| (c, root.join("www/tests").join(script))) };
    assert!(
        std::env::var_os("SEXTANT_REQUIRE_BROWSER").is_none(),
        "SEXTANT_REQUIRE_BROWSER is set but {missing} is missing"
    );
    eprintln!("\n\n*** SKIPPED: {missing} is missing; www/tests/{script} did not run in a browser ***\n\n");
    None
}

/// Runs a `www/tests` driver with `env` and returns its result (the `RESULT {...}` line it prints),
/// which must list no console or page problems.
pub async fn browser_script(script: &Path, env: &[(&str, &str)]) -> serde_json::Value {
    let output = tokio::process::Command::new("node").arg(script).envs(env.iter().copied()).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let what = format!("{} {env:?}", script.display());
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).unwrap_or_else(|| panic!("no result:\n{stdout}"));
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(result["problems"], serde_json::json!([]), "{what}: console or page errors");
    result
}
