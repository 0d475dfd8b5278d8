//! `sextant edge` as an operator runs it: a config file with a model and a module, the URL on the
//! first line, OIP and the module over HTTP; a bad config is refused with the file and the reason.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::{fixture, sextant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_host_serves_a_configured_model() {
    let dir = std::env::temp_dir().join(format!("sextant-edge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("edge.toml");
    let model = fixture("digits_mlp/model.onnx");
    let module = crate::guests::guests().join("image_classifier.wasm");
    // Inference behind a bearer token; the file holds its digest.
    let made = sextant(&["edge", "token"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let field = |name: &str| made.stdout.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_owned();
    let (token, digest) = (field("token:"), field("digest:"));
    assert!(token.starts_with("sxe_") && digest.starts_with("sha256:"), "{}", made.stdout);
    std::fs::write(
        &config,
        format!("node = \"gw-1\"\n[connections]\nheader_timeout_s = 1\n[auth]\ninference = [{digest:?}]\n[[models]]\nname = \"digits\"\npath = {model:?}\n[[modules]]\nname = \"classify\"\npath = {module:?}\n"),
    )
    .unwrap();
    let mut host = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"))
        .args(["edge", "--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let line = BufReader::new(host.stdout.take().unwrap()).lines().next_line().await.unwrap().unwrap();
    let url = line.strip_prefix("edge host gw-1 serving on ").unwrap_or_else(|| panic!("first line: {line}"));
    // Callers that never finish their headers are served beside, then closed at the 1 s timeout.
    let addr = url.trim_start_matches("http://").trim_end_matches("/v2");
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /v2/models/digits/infer HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        stalled.push(s);
    }
    let held = std::time::Instant::now();
    let http = tls::client().unwrap();
    let refused = http.get(format!("{url}/models/digits")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let refusal: serde_json::Value = refused.json().await.unwrap();
    assert!(refusal["error"].as_str().unwrap().contains("(inference group) needs `Authorization: Bearer"), "{refusal}");
    let wrong = http.get(format!("{url}/models/digits")).bearer_auth("sxe_guess").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let metadata = http.get(format!("{url}/models/digits")).bearer_auth(&token).send().await.unwrap();
    let metadata: serde_json::Value = metadata.json().await.unwrap();
    assert_eq!(metadata["inputs"][0]["name"], "pixels", "{metadata}");
    let live = http.get(format!("{url}/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200, "health is always open");
    let base = url.strip_suffix("/v2").unwrap();
    let pixels = serde_json::json!({ "pixels": vec![0; 64] });
    let answer = tls::client().unwrap().post(format!("{base}/classify?k=2")).json(&pixels).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(answer["top"].as_array().map(Vec::len), Some(2), "{answer}");
    let deadline = tokio::time::Instant::from_std(held) + Duration::from_secs(20);
    for s in &mut stalled {
        let mut chunk = [0u8; 256];
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await.expect("stalled callers are closed") {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // a 408 first
            }
        }
    }
    assert!(held.elapsed() > Duration::from_millis(800), "held until the 1 s timeout");
    host.kill().await.unwrap();

    std::fs::write(&config, "[[models]]\nname = \"a b\"\npath = \"x.onnx\"\n").unwrap();
    let run = sextant(&["edge", "--config", config.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("edge.toml") && run.stderr.contains("\"a b\""), "{}", run.stderr);
}

/// Runs the host in-process until `stop` fires; returns its URL and the task (which ends after the
/// final telemetry flush).
async fn start_host(
    config: &std::path::Path,
) -> (String, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let config = edge::Config::load(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        edge::serve(&config, listener, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (url, stop, task)
}

/// Every inference is telemetry: through a collector outage and a host restart, each prediction
/// arrives once, from the spool, and feature counts follow once the profile can be fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_hosts_telemetry_survives_an_outage_and_a_restart() {
    use crate::collect::{get_json, serve, sqlite_path, stored_batch_ids, stored_predictions};
    use collector::Database;
    let s = serve(&Database::Sqlite(sqlite_path("edge-telemetry")), |_| {}).await;
    let put = s
        .http
        .put(format!("{}/v1/models/digits/versions/1/profile", s.url))
        .bearer_auth(&s.keys.admin)
        .json(&crate::web::digits_profile())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let dir = std::env::temp_dir().join(format!("sextant-edge-telemetry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("edge.toml");
    let write = |collector: &str| {
        let model = fixture("digits_mlp/model.onnx");
        let module = crate::guests::guests().join("image_classifier.wasm");
        let text = format!(
            "node = \"gw-1\"\n[collector]\nurl = \"{collector}\"\nkey = \"{}\"\n[[models]]\nname = \"digits\"\npath = {model:?}\nbackend = \"cpu\"\nclasses = [\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]\n[[modules]]\nname = \"classify\"\npath = {module:?}\n",
            s.keys.ingest
        );
        std::fs::write(&config, text).unwrap();
    };
    let infer = async |url: &str, rows: usize| {
        let body = serde_json::json!({ "inputs": [{ "name": "pixels", "shape": [rows, 64], "datatype": "FP32", "data": vec![3.0; rows * 64] }] });
        let reply: serde_json::Value = s
            .http
            .post(format!("{url}/v2/models/digits/infer"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["parameters"]["prediction_ids"].as_array().map_or(0, Vec::len)
    };

    // The collector accepts connections and never answers: the host starts anyway (it waits a
    // bounded time for the profile), inferences answer, and their telemetry is spooled.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    write(&format!("http://{}", black_hole.local_addr().unwrap()));
    let started = std::time::Instant::now();
    let (url, stop, task) = start_host(&config).await;
    assert_eq!(infer(&url, 3).await, 3, "one prediction id per row");
    assert!(started.elapsed() < Duration::from_secs(10), "served after {:?}", started.elapsed());
    assert_eq!(infer(&url, 3).await, 3);
    stop.send(()).unwrap();
    task.await.unwrap();
    let spooled = std::fs::read_dir(dir.join("spool/digits")).unwrap().count();
    assert!(spooled >= 1, "the telemetry waits on disk");

    // Restarted, reachable: the spool drains first, then new telemetry follows, with features.
    write(&s.url);
    let (url, stop, task) = start_host(&config).await;
    assert_eq!(infer(&url, 1).await, 1);
    // A module's inference is recorded the same way; its answer names the prediction.
    let pixels = serde_json::json!({ "pixels": vec![3.0; 64] });
    let answer = s.http.post(format!("{url}/classify")).json(&pixels).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let ids = answer.headers()[edge::PREDICTION_IDS_HEADER].to_str().unwrap().to_owned();
    assert_eq!(ids.split(',').count(), 1, "{ids}");
    let prediction_id = ids.clone();
    assert!(prediction_id.len() == 32 && prediction_id.bytes().all(|b| b.is_ascii_hexdigit()), "{prediction_id}");
    let bad = serde_json::json!({ "inputs": [{ "name": "pixels", "shape": [1, 64], "datatype": "FP16", "data": vec![0; 64] }] });
    let status = s.http.post(format!("{url}/v2/models/digits/infer")).json(&bad).send().await.unwrap().status();
    assert_eq!(status, 400);
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(stored_predictions(&s.http, &s.url, &s.keys.read).await, 8, "each prediction once");
    let ids = stored_batch_ids(&s.http, &s.url, &s.keys.read).await;
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique);
    // What callers see tells them nothing of the batch ids to come, nor of other callers'
    // prediction ids (random per run): those could be claimed first.
    assert!(ids.iter().all(|id| !id.contains(&prediction_id)), "{prediction_id} in {ids:?}");
    assert!(ids.iter().all(|id| id.len() > 32), "random session ids: {ids:?}");
    assert_eq!(std::fs::read_dir(dir.join("spool/digits")).unwrap().count(), 0, "the spool is empty");
    let (_, features) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/digits/versions/1/features").await;
    let rows: u64 = features["items"].as_array().unwrap().iter().map(|f| f["rows"].as_u64().unwrap_or(0)).sum();
    assert_eq!(rows, 2, "feature counts once the profile could be fetched: {features}");
    let (_, errors) = get_json(&s.http, &s.url, &s.keys.read, "/v1/models/digits/versions/1/errors").await;
    let errors = errors["items"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["kind"], "rejected_input");
}
