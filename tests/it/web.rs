//! The browser package (`pkg/`) and the demo app in real headless Chromium, served by `sextant web`
//! and reporting to a live collector: `www/tests/web.mjs` runs the JS API on both engines against
//! the fixtures' reference outputs and checks its error codes, progress and caching; then the demo
//! sends predictions and labels, which must arrive exactly once, also when the collector is down
//! and the page reloads in between.
//!
//! Needs what the dashboard test needs plus the package (`cargo xtask web`); skips loudly without
//! them unless `SEXTANT_REQUIRE_BROWSER` is set. With `SEXTANT_REAL_MODELS` (a folder of cases
//! `benches/compare/light_models.py` and `helper_models.py` wrote; `cargo xtask ci` sets it) the page also runs the real
//! models in [`REAL_MODELS`] on both engines.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use collector::{Collector, Config, Database};
use telemetry::{FeatureKind, FeatureProfile, NumberProfile, PROFILE_VERSION, Profile};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::collect::{Keys, create_keys, get_json, sqlite_path, stored_predictions};
use crate::{browser_tools, fixture};

const MODEL: &str = "digits-mlp";

/// Real models the page runs on WebGPU when `SEXTANT_REAL_MODELS` has them.
const REAL_MODELS: [&str; 3] = ["squeezenet", "minilm", "yolo"];

/// The folder of real models, when the environment names one.
fn real_models() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("SEXTANT_REAL_MODELS")?);
    for name in REAL_MODELS {
        assert!(dir.join(name).join("model.onnx").is_file(), "SEXTANT_REAL_MODELS has no {name}: {}", dir.display());
    }
    Some(dir)
}

/// A collector on a fixed address that can be stopped and started again on the same database.
struct Collect {
    database: Database,
    addr: std::net::SocketAddr,
    origin: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Collect {
    async fn start(&mut self) {
        let config =
            Config { database: self.database.clone(), cors_origins: vec![self.origin.clone()], ..Config::default() };
        let store = collector::open(&config.database, 4).await.unwrap();
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        self.task = Some(tokio::spawn(collector::serve(Collector::new(store, config), listener, shutdown)));
        self.stop = Some(stop);
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The fixtures' (and real models') inputs and onnxruntime's outputs, as JSON the page turns into
/// typed arrays.
fn reference_cases(dir: &Path, real: Option<&Path>) -> PathBuf {
    let tensor = |path: PathBuf| {
        let bytes = std::fs::read(&path).unwrap();
        let t = runtime::onnx_pb::decode(&bytes).unwrap();
        serde_json::json!({
            "name": runtime::onnx_pb::name(&bytes).unwrap(),
            "dtype": t.dtype().to_string(),
            "dims": t.shape(),
            "data": t.data().to_f64_vec(),
        })
    };
    let fixtures =
        ["digits_mlp", "digits_cnn", "wine_tabular", "gpu_ops", "embedding", "dtypes"].map(|n| (n, fixture(n)));
    let real = real.into_iter().flat_map(|dir| REAL_MODELS.map(|n| (n, dir.join(n))));
    let cases: Vec<serde_json::Value> = fixtures
        .into_iter()
        .chain(real)
        .map(|(name, folder)| {
            let data = folder.join("test_data_set_0");
            let files = |prefix: &str| {
                let mut found: Vec<PathBuf> = std::fs::read_dir(&data)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
                    .collect();
                found.sort();
                found.into_iter().map(tensor).collect::<Vec<_>>()
            };
            serde_json::json!({ "name": name, "inputs": files("input_"), "outputs": files("output_") })
        })
        .collect();
    let path = dir.join("cases.json");
    std::fs::write(&path, serde_json::to_vec(&cases).unwrap()).unwrap();
    path
}

/// A reference profile of the 64 pixels, from the held-out digits the demo offers as samples.
pub(crate) fn digits_profile() -> Profile {
    let bytes = std::fs::read(fixture("digits_mlp/test_data_set_0/input_0.pb")).unwrap();
    let pixels = runtime::onnx_pb::decode(&bytes).unwrap().data().to_f64_vec();
    let rows = pixels.len() / 64;
    let features = (0..64)
        .map(|i| {
            let column: Vec<f64> = pixels.iter().skip(i).step_by(64).copied().collect();
            FeatureProfile {
                name: format!("pixel_{i}"),
                missing_rate: 0.0,
                kind: FeatureKind::Number(NumberProfile::build(&column, 4).unwrap()),
            }
        })
        .collect();
    Profile { baseline: None, profile_version: PROFILE_VERSION, rows: rows as u64, features, target: None }
}

/// Runs one phase of `www/tests/web.mjs`; returns its result object.
async fn phase(script: &Path, env: &[(&str, String)], phase: &str) -> serde_json::Value {
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("SEXTANT_PHASE", phase));
    crate::browser_script(script, &env).await
}

/// Predictions and labels the collector holds for the demo's model (today and yesterday, in case
/// the test crosses midnight: windows are epoch-aligned days).
async fn stored(http: &reqwest::Client, url: &str, keys: &Keys) -> (i64, u64) {
    let predictions = stored_predictions(http, url, &keys.read).await;
    let (status, body) =
        get_json(http, url, &keys.read, &format!("/v1/models/{MODEL}/performance?window=1d&windows=2")).await;
    assert_eq!(status, 200, "{body}");
    let labelled = body["series"].as_array().unwrap().iter().map(|w| w["labelled"].as_u64().unwrap()).sum();
    (predictions, labelled)
}

/// Polls until the collector holds what the page sent (the page's flush has already returned;
/// this only absorbs the last in-flight request).
async fn until_stored(http: &reqwest::Client, url: &str, keys: &Keys, want: (i64, u64)) -> (i64, u64) {
    let mut got = stored(http, url, keys).await;
    for _ in 0..50 {
        if got == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        got = stored(http, url, keys).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_package_runs_models_and_delivers_telemetry_exactly_once_in_chromium() {
    let Some((chromium, script)) =
        browser_tools("web.mjs", &[("pkg/sextant.js", "the browser package (cargo xtask web)")])
    else {
        return;
    };
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    // The collector, with a profile for the demo's model.
    let web_port = free_port();
    let origin = format!("http://127.0.0.1:{web_port}");
    let database = Database::Sqlite(sqlite_path("web"));
    let keys = create_keys(&*collector::open(&database, 1).await.unwrap()).await;
    let mut collect = Collect {
        database,
        addr: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
        origin: origin.clone(),
        stop: None,
        task: None,
    };
    collect.start().await;
    let url = format!("http://{}", collect.addr);
    let http = tls::client().unwrap();
    let put = http
        .put(format!("{url}/v1/models/{MODEL}/versions/1/profile"))
        .bearer_auth(&keys.admin)
        .json(&digits_profile())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);

    // `sextant web`, the real binary.
    let real = real_models();
    if real.is_none() {
        eprintln!(
            "\n\n*** SKIPPED in the page: real models (SEXTANT_REAL_MODELS is not set; `cargo xtask ci` sets it) ***\n\n"
        );
    }
    let mut web = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"));
    web.args(["web", "--addr", &format!("127.0.0.1:{web_port}"), "--collector", &url, "--key", &keys.ingest]);
    if let Some(dir) = &real {
        web.arg("--models").arg(dir);
    }
    let mut web = web.stdout(Stdio::piped()).kill_on_drop(true).spawn().unwrap();
    let mut lines = BufReader::new(web.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap_or_default();
    assert_eq!(first, format!("serving the demo on {origin}/"));

    let env = [
        ("SEXTANT_URL", origin.clone()),
        ("SEXTANT_CHROMIUM", chromium.display().to_string()),
        ("SEXTANT_CASES", reference_cases(&work, real.as_deref()).display().to_string()),
        ("SEXTANT_ARTIFACTS", work.join("screenshots").display().to_string()),
        ("SEXTANT_PROFILE_DIR", work.join("chromium-profile").display().to_string()),
        ("SEXTANT_SAMPLES", "6".to_owned()),
    ];

    // The API, on both engines, then the demo online.
    let api = phase(&script, &env, "api").await;
    eprintln!("{}", serde_json::to_string_pretty(&api).unwrap());
    check_api(&api["api"], real.is_some());
    let cnn = std::fs::metadata(fixture("digits_cnn/model.onnx")).unwrap().len();
    assert_eq!(api["api"]["progress"], serde_json::json!([cnn, cnn]), "progress ends at the model's size");
    // The reference run, the progress check and the cache fill fetch it; the cached load does not.
    assert_eq!(api["cnn_requests"], 3, "the last load of digits_cnn comes from the Cache API");
    assert_eq!(api["digits"].as_array().unwrap().len(), 6);
    assert_eq!(api["stats"]["pendingBatches"], 0, "{}", api["stats"]);
    assert_eq!(until_stored(&http, &url, &keys, (6, 6)).await, (6, 6), "six predictions and six labels, once");
    let (status, features) =
        get_json(&http, &url, &keys.read, &format!("/v1/models/{MODEL}/versions/1/features?limit=100")).await;
    assert_eq!(status, 200, "{features}");
    let rows: u64 = features["items"].as_array().unwrap().iter().map(|f| f["rows"].as_u64().unwrap_or(0)).sum();
    assert_eq!(rows, 6, "feature summaries counted every row against the profile: {features}");
    // `session.observe`: the page's own records, counted against a profile of them.
    let (status, observed) =
        get_json(&http, &url, &keys.read, "/v1/models/observe-test/versions/1/features?limit=100").await;
    assert_eq!(status, 200, "{observed}");
    let summaries = observed["items"].as_array().unwrap();
    let sum = |f: &dyn Fn(&serde_json::Value) -> u64| summaries.iter().map(f).sum::<u64>();
    assert_eq!(sum(&|s| s["rows"].as_u64().unwrap()), 3, "{observed}");
    let region = |key: &str| sum(&|s| s["features"][0][key].as_u64().unwrap());
    assert_eq!((region("unseen"), region("missing")), (1, 1), "{observed}");
    let stranger: Vec<&serde_json::Value> =
        summaries.iter().flat_map(|s| s["unexpected_fields"].as_array().unwrap()).collect();
    assert_eq!(stranger.len(), 1, "{observed}");
    assert_eq!(
        (&stranger[0]["name"], &stranger[0]["samples"]),
        (&serde_json::json!("regoin"), &serde_json::json!([{ "category": "north" }]))
    );

    // The collector goes down; the page classifies, labels and reloads; batches wait in storage.
    collect.stop().await;
    let offline = phase(&script, &env, "offline").await;
    assert!(offline["saved"].as_u64().unwrap() >= 1, "unsent batches are saved: {offline}");

    // Back up: a new page load delivers them, each once; closing the page beacons the rest.
    collect.start().await;
    let online = phase(&script, &env, "online").await;
    assert_eq!(online["stats"]["pendingBatches"], 0, "{online}");
    assert_eq!(online["left"], 0, "nothing left in localStorage: {online}");
    assert_eq!(
        online["beacons_while_hidden"], 1,
        "each batch is beaconed once, however often the page hides: {online}"
    );
    // Twelve, plus the two the page sent by beacon as it was closed.
    assert_eq!(until_stored(&http, &url, &keys, (14, 14)).await, (14, 14), "every prediction and label, once");

    collect.stop().await;
    web.kill().await.unwrap();
}

fn check_api(api: &serde_json::Value, real: bool) {
    for (name, run) in api["runs"].as_object().unwrap() {
        if name.ends_with("/webgpu") {
            continue;
        }
        assert_eq!(run["backend"], "cpu", "{name}: {run}");
        assert_eq!(run["mismatches"], serde_json::json!([]), "{name}: outputs differ from onnxruntime's: {run}");
    }
    let expect_code = |case: &str, code: &str, mentions: &str| {
        let error = &api["errors"][case];
        assert_eq!(error["code"], code, "{case}: {error}");
        assert_eq!(error["name"], "SextantError", "{case}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{case}: the message should mention {mentions:?}: {message}");
    };
    expect_code("dtype", "input_dtype", "expected dtype f32, got i32");
    expect_code("shape", "input_shape", "63 values do not fit shape [1, 64] (it holds 64)");
    expect_code("dims", "input_shape", "expected dim 0 to be 1 (shape [1, 64]), got shape [2, 32]");
    expect_code("missing", "missing_input", "missing input `pixels`");
    expect_code("unexpected", "unexpected_input", "unexpected input `extra`");
    expect_code("not_an_object", "bad_argument", "got number");
    expect_code("bad_value", "bad_argument", "input `pixels`");
    expect_code("bad_backend", "bad_argument", "\"tpu\"");
    expect_code("not_found", "fetch_failed", "HTTP 404");
    expect_code("invalid_model", "invalid_model", "");
    expect_code("integrity", "integrity", "was expected");
    expect_code("label_without_telemetry", "telemetry", "options.telemetry");
    expect_code("released", "released", "released");
    expect_code("huge_dims", "input_shape", "[65536, 65536, 64]");
    expect_code("negative_dims", "bad_argument", "non-negative integers");
    expect_code("observe_not_object", "bad_argument", "expected an object of fields");
    expect_code("observe_bad_field", "bad_argument", "field `region` is of type object");
    assert!(
        api["empty_batch"] == serde_json::json!([0, 10]) || api["empty_batch"].is_string(),
        "an empty batch gives empty outputs or an error: {}",
        api["empty_batch"]
    );
    assert_eq!(api["still_runs"], serde_json::json!([1, 10]), "the module still runs after every error");
    assert_eq!(api["cached"], serde_json::json!([true, true]));

    // The GPU engine in the page (WebGPU; SwiftShader here), and `auto` saying why it runs on
    // the CPU.
    assert_eq!(api["auto"]["backend"], "cpu", "{}", api["auto"]);
    assert!(!api["auto"]["reason"].as_str().unwrap().is_empty(), "{}", api["auto"]);
    let runs = &api["runs"];
    if runs["digits_mlp/webgpu"]["error"].as_str().is_some_and(|e| e.contains("no GPU adapter")) {
        assert!(
            std::env::var_os("SEXTANT_REQUIRE_WEBGPU").is_none(),
            "SEXTANT_REQUIRE_WEBGPU is set but Chromium has no WebGPU adapter: {}",
            runs["digits_mlp/webgpu"]
        );
        eprintln!("\n\n*** SKIPPED: Chromium exposes no WebGPU adapter here; the WebGPU engine was not run ***\n\n");
        return;
    }
    let software = &api["auto_software"];
    assert_eq!(software["backend"], "cpu", "auto skips a software adapter: {software}");
    let reason = software["reason"].as_str().unwrap();
    assert!(reason.contains("software rasteriser") && reason.contains("swiftshader"), "{reason}");
    // Softmax, integer ids (Gather), an ArgMax label included: Chromium compiles every kernel the
    // engine makes for these.
    let real = REAL_MODELS.iter().filter(|_| real);
    for name in ["digits_mlp", "digits_cnn", "gpu_ops", "wine_tabular", "embedding"].iter().chain(real) {
        let gpu = &runs[format!("{name}/webgpu")];
        assert_eq!(gpu["backend"], "webgpu", "{name} passes the gate on WebGPU: {gpu}");
        assert_eq!(gpu["mismatches"], serde_json::json!([]), "{name}: WebGPU outputs differ from onnxruntime's: {gpu}");
    }
    // f64 values are refused, naming the tensor and its dtype.
    let error = runs["dtypes/webgpu"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("engine_refused:") && error.contains("`f64` is f64"), "dtypes: {error}");
}
