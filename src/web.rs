//! `sextant web`: serves the demo app (`www/demo/`), the browser package (`pkg/`, built by
//! `cargo xtask web`) and the fixture models, so a browser can run them locally.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use axum::Router;
use tower_http::services::ServeDir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The repository checkout holding `www/demo`, `pkg` and the fixture models.
    #[arg(long, default_value = env!("CARGO_MANIFEST_DIR"))]
    root: PathBuf,
    /// A collector the demo sends telemetry to (its origin must be in the collector's `cors_origins`).
    #[arg(long, requires = "key")]
    collector: Option<String>,
    /// The ingest key the demo sends telemetry with.
    #[arg(long, requires = "collector")]
    key: Option<String>,
    /// More models to serve under `/models/` (one folder per model, as the fixtures are), before
    /// the fixtures.
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
}

pub fn main(args: Args) -> anyhow::Result<ExitCode> {
    let telemetry = args.collector.zip(args.key);
    let telemetry = telemetry.as_ref().map(|(c, k)| (c.as_str(), k.as_str()));
    let app = router(&args.root, args.models.as_deref(), telemetry)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("while binding {}", args.addr))?;
        let addr = listener.local_addr()?;
        // The first line is a contract: tests and scripts read the URL from it.
        println!("serving the demo on http://{addr}/");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("while serving")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The demo app, the browser package and the fixture models under `root` (after the folders in
/// `models`, when given); the page sends its telemetry to `telemetry` (collector URL, ingest key)
/// when given.
pub(crate) fn router(root: &Path, models: Option<&Path>, telemetry: Option<(&str, &str)>) -> anyhow::Result<Router> {
    let pkg = root.join("pkg");
    if !pkg.join("sextant.js").is_file() {
        bail!("{} has no browser package: run `cargo xtask web` first", pkg.display());
    }
    let fixtures = ServeDir::new(root.join(FIXTURES));
    let models = match models {
        Some(dir) if !dir.is_dir() => bail!("--models {}: not a folder", dir.display()),
        Some(dir) => Router::new().fallback_service(ServeDir::new(dir).fallback(fixtures)),
        None => Router::new().fallback_service(fixtures),
    };
    let samples = digit_samples(root)?;
    let config = serde_json::json!({
        "telemetry": telemetry.map(|(collector, key)| serde_json::json!({ "collector": collector, "key": key })),
    });
    Ok(Router::new()
        .route("/config.json", axum::routing::get(move || async move { axum::Json(config) }))
        .route("/samples.json", axum::routing::get(move || async move { axum::Json(samples) }))
        .nest_service("/pkg", ServeDir::new(pkg))
        .nest_service("/models", models)
        .fallback_service(ServeDir::new(root.join("www/demo"))))
}

/// The fixture models, under the repository root.
const FIXTURES: &str = "crates/runtime/test_data/models";

/// Held-out digits (8×8, values 0–16) from the digits model's test case: the demo's samples.
fn digit_samples(root: &Path) -> anyhow::Result<serde_json::Value> {
    let path = root.join("crates/runtime/test_data/models/digits_mlp/test_data_set_0/input_0.pb");
    let bytes = std::fs::read(&path).with_context(|| format!("while reading {}", path.display()))?;
    let tensor = runtime::onnx_pb::decode(&bytes).with_context(|| format!("while decoding {}", path.display()))?;
    let values = tensor.as_slice::<f32>().context("the digits samples are not f32")?;
    let rows: Vec<&[f32]> = values.chunks(64).collect();
    Ok(serde_json::json!({ "pixels": rows }))
}
