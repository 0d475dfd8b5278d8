//! The edge host's costs, measured side by side in one run (`cargo xtask bench-edge`):
//!
//! 1. a request through a module that infers nothing: store, pooled instantiation, handler, answer;
//! 2. guest → `wasi:nn` → runtime against `Session::run` in-process, on a tiny model (digits_mlp,
//!    batch 1: the difference in µs) and a resnet50-class model (the ratio; goal: within 5%);
//! 3. HTTP throughput and p99 latency of the tabular example with concurrent clients on loopback;
//! 4. host memory per loaded module (resident set growth over 8 compiled copies).
//!
//! usage: cargo bench --bench edge -- GUESTS_DIR [RESNET50_CASE_DIR] [--seconds N]
//! (`cargo xtask bench-edge` builds the guests and materialises resnet50 first.)

// A benchmark: a failed setup is a panic with its message.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use runtime::{Session, Tensor, onnx_pb};
use tokio::time::Instant;

const WINE: &str = "alcohol,malic_acid,ash,alcalinity_of_ash,magnesium,total_phenols,flavanoids,nonflavanoid_phenols,proanthocyanins,color_intensity,hue,od280_od315_of_diluted_wines,proline";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/runtime/test_data/models").join(name)
}

fn input(case: &Path) -> (String, Tensor) {
    let bytes = std::fs::read(case.join("test_data_set_0/input_0.pb")).unwrap();
    (onnx_pb::name(&bytes).unwrap(), onnx_pb::decode(&bytes).unwrap())
}

/// The first row of `tensor` (batch 1).
fn first_row(tensor: &Tensor) -> Tensor {
    let width: usize = tensor.shape()[1..].iter().product();
    let mut shape = tensor.shape().to_vec();
    shape[0] = 1;
    Tensor::new(&shape, tensor.as_slice::<f32>().unwrap()[..width].to_vec()).unwrap()
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

async fn host(dir: &Path, config: &str) -> Arc<edge::Host> {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join("edge.toml");
    std::fs::write(&file, config).unwrap();
    Arc::new(edge::Host::load(&edge::Config::load(&file).unwrap()).await.unwrap())
}

/// One module call built by `request`, answered 200, its body read: the time it took.
async fn module_call(host: &edge::Host, module: &str, request: axum::extract::Request) -> Duration {
    let started = Instant::now();
    let response = host.call_module(module, request).await;
    assert_eq!(response.status(), 200, "{module}");
    std::hint::black_box(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap());
    started.elapsed()
}

fn session_call(session: &Session, input: &(String, Tensor)) -> Duration {
    let inputs = vec![input.clone()];
    let started = Instant::now();
    std::hint::black_box(pollster::block_on(session.run(inputs)).unwrap());
    started.elapsed()
}

/// A raw-tensor request: the tensor's bytes as the body.
fn raw(graph: &str, (name, tensor): &(String, Tensor), output: &str) -> axum::extract::Request {
    let dims: Vec<String> = tensor.shape().iter().map(usize::to_string).collect();
    let body: Vec<u8> = tensor.as_slice::<f32>().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect();
    let uri = format!("/raw?graph={graph}&input={name}&dims={}&output={output}", dims.join(","));
    axum::http::Request::post(uri).header("host", "bench").body(Body::from(body)).unwrap()
}

async fn overhead(guests: &Path, resnet: Option<&Path>, dir: &Path) {
    let mut models =
        format!("[[models]]\nname = \"digits\"\npath = {:?}\nbackend = \"cpu\"\n", fixture("digits_mlp/model.onnx"));
    if let Some(resnet) = resnet {
        models +=
            &format!("[[models]]\nname = \"resnet\"\npath = {:?}\nbackend = \"cpu\"\n", resnet.join("model.onnx"));
    }
    let config = format!(
        "[limits]\nworkers = 1\ntimeout_ms = 600000\nmax_body_bytes = 67108864\nreload_ms = 0\n{models}\
         [[modules]]\nname = \"raw\"\npath = {:?}\nmemory_mb = 256\ntimeout_ms = 60000\n\
         [[modules]]\nname = \"ok\"\npath = {:?}\n",
        guests.join("raw_tensor.wasm"),
        guests.join("misbehave.wasm"),
    );
    let host = host(dir, &config).await;

    let empty = || axum::http::Request::get("/ok/fine").header("host", "bench").body(Body::empty()).unwrap();
    let mut samples = Vec::new();
    for i in 0..2200 {
        let took = module_call(&host, "ok", empty()).await;
        if i >= 200 {
            samples.push(took);
        }
    }
    println!(
        "| request through a module, no inference (store + pooled instantiation + handler) | p50 {:.0} µs, p99 {:.0} µs |",
        us(percentile(&mut samples, 0.5)),
        us(percentile(&mut samples, 0.99))
    );

    let cases: Vec<(&str, PathBuf, usize)> = std::iter::once(("digits", fixture("digits_mlp"), 2000))
        .chain(resnet.map(|r| ("resnet", r.to_owned(), 40)))
        .collect();
    for (graph, case, n) in cases {
        let (name, tensor) = input(&case);
        let input = (name, first_row(&tensor));
        // The very session the module's inferences use, called directly: the difference is the
        // sandbox (request, instance, copies across wasi:nn, the worker pool's thread hop).
        let session = host.registry().get(graph, None).unwrap().session.clone();
        let output = session.outputs().last().unwrap().name.clone();
        let (mut direct, mut guest) = (Vec::with_capacity(n), Vec::with_capacity(n));
        // Alternated, so drift in the machine's speed falls on both alike.
        for i in 0..n + n / 10 + 2 {
            let d = session_call(&session, &input);
            let g = module_call(&host, "raw", raw(graph, &input, &output)).await;
            if i >= n / 10 + 2 {
                direct.push(d);
                guest.push(g);
            }
        }
        let (direct, guest) = (percentile(&mut direct, 0.5), percentile(&mut guest, 0.5));
        println!(
            "| {graph} (batch 1), p50 of {n} alternated: Session::run {:.0} µs, guest → wasi:nn → runtime {:.0} µs | +{:.0} µs, {:.3}× |",
            us(direct),
            us(guest),
            us(guest) - us(direct),
            guest.as_secs_f64() / direct.as_secs_f64()
        );
    }
}

async fn throughput(guests: &Path, dir: &Path, seconds: u64) {
    let config = format!(
        "[limits]\nworkers = 2\nqueue = 256\nreload_ms = 0\n\
         [[models]]\nname = \"wine\"\npath = {:?}\n\
         [[modules]]\nname = \"wine-app\"\npath = {:?}\nenv = {{ FEATURES = \"{WINE}\" }}\n",
        fixture("wine_tabular/model.onnx"),
        guests.join("tabular.wasm"),
    );
    let host = host(dir, &config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wine-app", listener.local_addr().unwrap());
    let app = host.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (_, features) = input(&fixture("wine_tabular"));
    let values = features.as_slice::<f32>().unwrap()[..13].to_vec();
    let record: serde_json::Map<String, serde_json::Value> =
        WINE.split(',').zip(values).map(|(k, v)| (k.to_owned(), serde_json::json!(v))).collect();
    let body = serde_json::to_vec(&record).unwrap();
    for clients in [1usize, 8, 32] {
        let end = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (url, body) = (url.clone(), body.clone());
                tokio::spawn(async move {
                    let client = tls::client().unwrap();
                    let (mut samples, mut failed) = (Vec::new(), 0u64);
                    while Instant::now() < end {
                        let started = Instant::now();
                        let ok = match client.post(&url).body(body.clone()).send().await {
                            Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        match ok {
                            true => samples.push(started.elapsed()),
                            false => failed += 1,
                        }
                    }
                    (samples, failed)
                })
            })
            .collect();
        let (mut samples, mut failed) = (Vec::new(), 0);
        for task in tasks {
            let (s, f) = task.await.unwrap();
            samples.extend(s);
            failed += f;
        }
        let rate = samples.len() as f64 / seconds as f64;
        let p50 = percentile(&mut samples, 0.5);
        let p99 = percentile(&mut samples, 0.99);
        println!(
            "| tabular example over HTTP, {clients} clients | {rate:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {failed} failed |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
}

async fn memory(guests: &Path, dir: &Path) {
    let copies = 8;
    let base = format!(
        "[limits]\nreload_ms = 0\n[[models]]\nname = \"wine\"\npath = {:?}\n",
        fixture("wine_tabular/model.onnx")
    );
    let before = resident_bytes();
    let bare = host(&dir.join("bare"), &base).await;
    let with_host = resident_bytes();
    let mut config = base.clone();
    for i in 0..copies {
        config += &format!("[[modules]]\nname = \"m{i}\"\npath = {:?}\n", guests.join("tabular.wasm"));
    }
    let loaded = host(&dir.join("modules"), &config).await;
    let after = resident_bytes();
    let size = std::fs::metadata(guests.join("tabular.wasm")).unwrap().len();
    println!(
        "| host memory per loaded module (tabular, {} KiB component; {copies} copies) | {:.1} MiB resident each (host with one model: {:.1} MiB) |",
        size / 1024,
        // The second host repeats the first (engine, model) and adds the modules.
        (after.saturating_sub(with_host).saturating_sub(with_host - before.min(with_host))) as f64
            / copies as f64
            / (1 << 20) as f64,
        (with_host.saturating_sub(before)) as f64 / (1 << 20) as f64
    );
    drop((bare, loaded));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let seconds =
        args.iter().position(|a| a == "--seconds").and_then(|i| args.get(i + 1)).map_or(5, |s| s.parse().unwrap());
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--") && a.parse::<u64>().is_err()).collect();
    let Some(guests) = positional.first().map(PathBuf::from) else {
        eprintln!(
            "usage: cargo bench --bench edge -- GUESTS_DIR [RESNET50_CASE_DIR] [--seconds N] (see cargo xtask bench-edge)"
        );
        return;
    };
    let resnet = positional.get(1).map(PathBuf::from);
    let dir = std::env::temp_dir().join(format!("sextant-bench-edge-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("| edge host | measured |\n| --- | --- |");
    runtime.block_on(async {
        memory(&guests, &dir.join("memory")).await;
        overhead(&guests, resnet.as_deref(), &dir.join("overhead")).await;
        throughput(&guests, &dir.join("throughput"), seconds).await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
