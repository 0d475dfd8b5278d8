//! `cargo xtask`: the project's build automation, in Rust rather than shell scripts.
//!
//! - `ci`: everything CI runs (fmt, clippy, tests, conformance, wasm32 builds), so a contributor
//!   sees the same result locally.
//! - `fixtures`: regenerate the runtime's test models and expected outputs (needs Python).
//! - `conformance`: the ONNX backend test data from the `onnx` wheel, on every engine.
//! - `wasm-size`: release sizes of the runtime for wasm32, raw and gzip, with and without the GPU engine.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// fmt --check, clippy -D warnings, all tests, conformance, wasm32 builds.
    Ci,
    /// Regenerate crates/runtime/test_data (pip-installs the pinned Python packages).
    Fixtures,
    /// Run the backend test data shipped in the `onnx` wheel (pip-installs it) on every engine.
    Conformance,
    /// Build the runtime for wasm32 in release and print raw and gzip sizes.
    WasmSize,
}

const WASM_TARGETS: [&str; 2] = ["wasm32-unknown-unknown", "wasm32-wasip2"];

fn main() -> Result<()> {
    match Cli::parse().command {
        Task::Ci => ci(),
        Task::Fixtures => fixtures(),
        Task::Conformance => conformance(),
        Task::WasmSize => wasm_size().map(drop),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Where cargo puts build outputs: `CARGO_TARGET_DIR` when set (CI keeps one outside the clone).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.status().with_context(|| format!("while starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("while starting {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// rustup does not add `rust-toolchain.toml` targets to an already-installed toolchain.
fn add_wasm_targets() -> Result<()> {
    run(Command::new("rustup").current_dir(root()).args(["target", "add"]).args(WASM_TARGETS))
}

fn ci() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    run(cargo().args(["test", "--workspace"]))?;
    let cases = root().join("crates/runtime/test_data");
    run(cargo()
        .args(["run", "--quiet", "--", "conformance"])
        .arg(cases.join("models"))
        .arg(cases.join("conformance")))?;
    wasm_size()?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

fn pip_install(packages: &[&str]) -> Result<()> {
    run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(packages))
}

fn fixtures() -> Result<()> {
    let data = root().join("crates/runtime/test_data");
    pip_install(&["-r", data.join("requirements.txt").to_str().context("path is not UTF-8")?])?;
    run(Command::new("python3").arg(data.join("generate.py")))
}

fn conformance() -> Result<()> {
    pip_install(&["onnx"])?;
    let data = output(Command::new("python3").args([
        "-c",
        "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend', 'test', 'data'))",
    ]))?;
    let suites = ["pytorch-converted", "pytorch-operator", "simple"].map(|s| Path::new(&data).join(s));
    run(cargo().args(["run", "--release", "--quiet", "--", "conformance"]).args(suites))
}

/// Builds the runtime for each wasm32 target and prints its sizes; returns (label, raw, gzip).
fn wasm_size() -> Result<Vec<(String, u64, u64)>> {
    add_wasm_targets()?;
    // A cdylib is what ships; the size of the rlib would say little. The probe crate is the runtime
    // linked into a module that keeps its public API alive.
    let builds = [
        ("wasm32-unknown-unknown, with GPU engine", "wasm32-unknown-unknown", true),
        ("wasm32-unknown-unknown, CPU only", "wasm32-unknown-unknown", false),
        ("wasm32-wasip2, CPU only", "wasm32-wasip2", false),
    ];
    let mut sizes = Vec::new();
    for (label, target, gpu) in builds {
        let mut cmd = cargo();
        cmd.args(["build", "--release", "--package", "runtime-size", "--target", target]);
        if !gpu {
            cmd.arg("--no-default-features");
        }
        run(&mut cmd)?;
        let wasm = target_dir().join(target).join("release/runtime_size.wasm");
        let raw = std::fs::metadata(&wasm).with_context(|| format!("while reading {}", wasm.display()))?.len();
        let gzip = output(Command::new("sh").arg("-c").arg(format!("gzip -9 -c '{}' | wc -c", wasm.display())))?
            .parse()
            .context("while reading the gzip size")?;
        println!("{label}: {raw} bytes raw, {gzip} bytes gzip");
        sizes.push((label.to_owned(), raw, gzip));
    }
    Ok(sizes)
}
