//! The edge host over real HTTP: OIP answers equal the runtime's own, and every bad request gets
//! the protocol's `{"error"}` body with the right status while the host keeps serving.

// Tests unwrap: a panic is a failure with a message.
#![allow(clippy::unwrap_used)]

mod guests;
mod modules;

use std::path::{Path, PathBuf};

use runtime::{Model, Session, SessionOptions, Tensor};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/test_data/models").join(name)
}

/// A host serving digits (CPU, free batch) and wine, on a free port, with a small body limit.
async fn host(dir: &Path) -> String {
    host_with(dir, "max_body_bytes = 65536").await
}

/// The same, with other `[limits]`.
async fn host_with(dir: &Path, limits: &str) -> String {
    let config = format!(
        r#"
node = "test-gateway"
[limits]
{limits}
[[models]]
name = "digits"
path = "{}"
backend = "cpu"
[[models]]
name = "wine"
path = "{}"
version = "7"
"#,
        fixture("digits_mlp/model.onnx").display(),
        fixture("wine_tabular/model.onnx").display()
    );
    let file = dir.join("edge.toml");
    std::fs::write(&file, config).unwrap();
    let config = edge::Config::load(&file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let host = std::sync::Arc::new(edge::Host::load(&config).await.unwrap());
    let app = host.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn input(name: &str) -> (String, Tensor) {
    let bytes = std::fs::read(fixture(name).join("test_data_set_0/input_0.pb")).unwrap();
    (runtime::onnx_pb::name(&bytes).unwrap(), runtime::onnx_pb::decode(&bytes).unwrap())
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let response = tls::client().unwrap().post(url).json(&body).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get(url: &str) -> (u16, Value) {
    let response = tls::client().unwrap().get(url).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oip_answers_equal_the_runtimes_own() {
    let dir = std::env::temp_dir().join(format!("sextant-edge-oip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = host(&dir).await;

    assert_eq!(get(&format!("{url}/v2/health/live")).await, (200, json!({ "live": true })));
    assert_eq!(get(&format!("{url}/v2/health/ready")).await.0, 200);
    let (status, meta) = get(&format!("{url}/v2/models/digits")).await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["inputs"], json!([{ "name": "pixels", "datatype": "FP32", "shape": [-1, 64] }]));
    assert_eq!(meta["versions"], json!(["1"]));
    assert_eq!(get(&format!("{url}/v2/models/wine/versions/7/ready")).await.0, 200);

    for model in ["digits_mlp", "wine_tabular"] {
        let served = if model == "digits_mlp" { "digits" } else { "wine" };
        let (name, tensor) = input(model);
        // The runtime, in-process, on the same engine choice: the host must return exactly this.
        let bytes = std::fs::read(fixture(model).join("model.onnx")).unwrap();
        let backend = if model == "digits_mlp" { runtime::BackendChoice::Cpu } else { runtime::BackendChoice::Auto };
        let session =
            Session::new(&Model::from_bytes(&bytes).unwrap(), &SessionOptions { backend, ..Default::default() })
                .await
                .unwrap();
        let expected = session.run(vec![(name.clone(), tensor.clone())]).await.unwrap();

        let request = json!({
            "id": "req-1",
            "inputs": [{ "name": name, "shape": tensor.shape(), "datatype": "FP32", "data": tensor.data().to_f64_vec() }],
        });
        let (status, reply) = post(&format!("{url}/v2/models/{served}/infer"), request).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["model_name"], served);
        assert_eq!(reply["id"], "req-1");
        let outputs = reply["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), expected.len());
        for ((want_name, want), got) in expected.iter().zip(outputs) {
            assert_eq!(got["name"], *want_name);
            assert_eq!(got["shape"], json!(want.shape()));
            let values = got["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap());
            match want.as_slice::<f32>() {
                Some(want) => {
                    assert_eq!(got["datatype"], "FP32");
                    // JSON carries each f32 in its shortest round-trip form: back as f32, it is exact.
                    let got: Vec<f32> = values.map(|v| v as f32).collect();
                    assert_eq!(got, want, "{model} output {want_name}");
                }
                None => {
                    assert_eq!(got["datatype"], "INT64", "{model} output {want_name}");
                    assert_eq!(values.collect::<Vec<_>>(), want.data().to_f64_vec(), "{model} output {want_name}");
                }
            }
        }
    }

    // Nested data, one output asked for, the versioned route.
    let (name, tensor) = input("digits_mlp");
    let rows: Vec<Vec<f64>> = tensor.data().to_f64_vec().chunks(64).take(2).map(<[f64]>::to_vec).collect();
    let (status, reply) = post(
        &format!("{url}/v2/models/digits/versions/1/infer"),
        json!({ "inputs": [{ "name": name, "shape": [2, 64], "datatype": "FP32", "data": rows }], "outputs": [{ "name": "probabilities" }] }),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(reply["outputs"][0]["shape"], json!([2, 10]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_protocols_error_and_the_host_keeps_serving() {
    let dir = std::env::temp_dir().join(format!("sextant-edge-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = host(&dir).await;
    let infer = format!("{url}/v2/models/digits/infer");
    let pixels = |shape: Value, datatype: &str, data: Value| json!({ "inputs": [{ "name": "pixels", "shape": shape, "datatype": datatype, "data": data }] });
    let cases = [
        (
            format!("{url}/v2/models/nope/infer"),
            pixels(json!([1, 64]), "FP32", json!(vec![0; 64])),
            404,
            "model \"nope\" is not served here; served: digits (version 1), wine (version 7)",
        ),
        (
            format!("{url}/v2/models/wine/versions/6/infer"),
            json!({ "inputs": [] }),
            404,
            "model \"wine\" version \"6\" is not served here",
        ),
        (infer.clone(), pixels(json!([1, 64]), "FP16", json!(vec![0; 64])), 400, "datatype \"FP16\" is not one of"),
        (infer.clone(), pixels(json!([1, 64]), "FP32", json!(vec!["a"; 64])), 400, "value 0 (\"a\") is not a number"),
        (
            infer.clone(),
            pixels(json!([1, 63]), "FP32", json!(vec![0; 64])),
            400,
            "holds 63 elements, but 64 values were given",
        ),
        (infer.clone(), pixels(json!([2, 32]), "FP32", json!(vec![0; 64])), 400, "expected dim 1 to be 64"),
        (infer.clone(), pixels(json!([1, 64]), "INT64", json!(vec![0; 64])), 400, "expected dtype f32, got i64"),
        (infer.clone(), json!({ "inputs": [] }), 400, "missing input `pixels`"),
        (infer.clone(), json!({ "nothing": 1 }), 400, "not an inference request"),
        (
            infer.clone(),
            json!({ "inputs": [{ "name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": vec![0; 64] }], "outputs": [{ "name": "x" }] }),
            400,
            "unknown output `x`",
        ),
        (
            infer.clone(),
            pixels(json!([1000, 64]), "FP32", json!(vec![0.5; 64_000])),
            413,
            "over the limit of 65536 bytes",
        ),
    ];
    for (route, body, status, mentions) in cases {
        let (got, reply) = post(&route, body).await;
        let message = reply["error"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{route}: {reply}");
        assert!(message.contains(mentions), "{route}: expected the error to mention {mentions:?}: {message}");
    }
    assert_eq!(get(&format!("{url}/v2/nowhere")).await.0, 404);
    // Still serving.
    let (status, _) = post(&infer, pixels(json!([1, 64]), "FP32", json!(vec![0; 64]))).await;
    assert_eq!(status, 200);
}

/// The pool's bounds: a full pool refuses at once, a run past its timeout answers 504-style while
/// it finishes on its thread, and the slot comes back afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_refuses_when_full_and_times_out_without_losing_its_bound() {
    let bytes = std::fs::read(fixture("digits_mlp/model.onnx")).unwrap();
    let options = SessionOptions { backend: runtime::BackendChoice::Cpu, ..Default::default() };
    let session = std::sync::Arc::new(Session::new(&Model::from_bytes(&bytes).unwrap(), &options).await.unwrap());
    // Enough rows that a run takes milliseconds.
    let big = || vec![("pixels".to_owned(), Tensor::new(&[100_000, 64], vec![1f32; 6_400_000]).unwrap())];
    let small = || vec![("pixels".to_owned(), Tensor::new(&[1, 64], vec![1f32; 64]).unwrap())];

    let limits = edge::Limits { workers: 1, queue: 0, timeout_ms: 60_000, ..edge::Limits::default() };
    let pool = edge::Pool::new(&limits);
    let first = pool.run(session.clone(), big());
    tokio::pin!(first);
    // One poll admits the first run.
    assert!(tokio::time::timeout(std::time::Duration::ZERO, &mut first).await.is_err());
    let refused = pool.run(session.clone(), small()).await.unwrap_err();
    assert!(matches!(refused, edge::PoolError::Busy { workers: 1, queue: 0 }), "{refused}");
    assert_eq!(first.await.unwrap()[0].1.shape(), [100_000, 10]);
    assert!(pool.run(session.clone(), small()).await.is_ok(), "the slot came back");

    let hurried = edge::Pool::new(&edge::Limits { timeout_ms: 1, ..limits });
    let late = hurried.run(session.clone(), big()).await.unwrap_err();
    assert!(matches!(late, edge::PoolError::Timeout(_)), "{late}");
    // The timed-out run still holds its worker until it finishes; then the pool serves again.
    let mut served = false;
    for _ in 0..200 {
        if let Ok(out) = edge::Pool::new(&limits).run(session.clone(), small()).await
            && hurried.run(session.clone(), small()).await.is_ok()
        {
            served = out.len() == 2;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(served, "the pool never served again after a timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_is_cut_off_and_its_slot_comes_back() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = std::env::temp_dir().join(format!("sextant-edge-stalled-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One worker, no queue: one body may be read at a time.
    let url = host_with(&dir, "workers = 1\nqueue = 0\ntimeout_ms = 1000").await;
    let mut stalled = tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await.unwrap();
    let head = "POST /v2/models/digits/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 100000\r\n\r\n{\"inputs\": [";
    stalled.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let pixels = json!({ "inputs": [{ "name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": vec![0; 64] }] });
    let infer = format!("{url}/v2/models/digits/infer");
    let (status, reply) = post(&infer, pixels.clone()).await;
    assert_eq!(status, 503, "the one body slot is held: {reply}");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("did not arrive") {
            match stalled.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let (status, reply) = post(&infer, pixels).await;
    assert_eq!(status, 200, "the slot came back: {reply}");
}
