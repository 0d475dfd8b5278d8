//! Sandboxed modules over real HTTP: the example pipelines answer what the runtime computes;
//! misbehaving modules (a loop, unbounded memory, a trap, an oversized request) each get a clean
//! error while good requests on the same host succeed; a module swapped under load loses no
//! request, and one that does not compile leaves the old one serving.

use std::path::Path;
use std::sync::Arc;

use runtime::{Model, Session, SessionOptions};
use serde_json::{Value, json};

use crate::guests::guests;
use crate::{fixture, get, input, post};

const WINE: [&str; 13] = [
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280_od315_of_diluted_wines",
    "proline",
];

/// A host with the digits and wine models and the three guest modules (`misbehave` copied to
/// `dir`, so tests can replace it), on a free port.
async fn host(dir: &Path, extra: &str) -> String {
    let guests = guests();
    std::fs::copy(guests.join("misbehave.wasm"), dir.join("swap.wasm")).unwrap();
    std::fs::copy(fixture("wine_tabular/model.onnx"), dir.join("wine.onnx")).unwrap();
    let config = format!(
        r#"
node = "test-gateway"
[limits]
max_body_bytes = 65536
reload_ms = 50
{extra}
[[models]]
name = "digits"
path = "{digits}"
backend = "cpu"
[[models]]
name = "wine"
path = "wine.onnx"

[[modules]]
name = "digits-app"
path = "{guests}/image_classifier.wasm"
route = "/apps/digits"
graphs = ["digits"]
env = {{ LABELS = "zero,one,two,three,four,five,six,seven,eight,nine" }}

[[modules]]
name = "wine-app"
path = "{guests}/tabular.wasm"
graphs = ["wine"]
env = {{ FEATURES = "{features}", CLASSES = "class_0,class_1,class_2" }}

[[modules]]
name = "misbehave"
path = "{guests}/misbehave.wasm"
memory_mb = 16
timeout_ms = 300
env = {{ GRANTED = "yes" }}

[[modules]]
name = "swap"
path = "swap.wasm"
"#,
        digits = fixture("digits_mlp/model.onnx").display(),
        guests = guests.display(),
        features = WINE.join(","),
    );
    let file = dir.join("edge.toml");
    std::fs::write(&file, config).unwrap();
    let config = edge::Config::load(&file).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let host = Arc::new(edge::Host::load(&config).await.unwrap());
    std::mem::forget(host.watch());
    let app = host.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sextant-edge-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The runtime's own answer for `model` on its first test input.
async fn reference(model: &str) -> Vec<(String, runtime::Tensor)> {
    let bytes = std::fs::read(fixture(model).join("model.onnx")).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let options = SessionOptions { backend: runtime::BackendChoice::Cpu, ..SessionOptions::default() };
    let (name, tensor) = input(if model.inputs()[0].name == "pixels" { "digits_mlp" } else { "wine_tabular" });
    let session = Session::new(&model, &options.clone()).await.unwrap();
    let dims = runtime::free_dims_of(model.inputs(), &[(name.clone(), tensor.clone())]);
    let session = if dims.is_empty() {
        session
    } else {
        Session::new(&model, &SessionOptions { dims, ..options }).await.unwrap()
    };
    session.run(vec![(name, tensor)]).await.unwrap()
}

fn row(tensor: &runtime::Tensor, i: usize) -> Vec<f32> {
    let width = tensor.shape()[1];
    tensor.as_slice::<f32>().unwrap()[i * width..(i + 1) * width].to_vec()
}

fn probabilities(outputs: &[(String, runtime::Tensor)]) -> &runtime::Tensor {
    &outputs.iter().find(|(n, _)| n == "probabilities").unwrap().1
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_pipelines_answer_what_the_runtime_computes() {
    let url = host(&temp("pipelines"), "").await;
    let (status, modules) = get(&format!("{url}/v2/modules")).await;
    assert_eq!(status, 200, "{modules}");
    let names: Vec<&str> = modules["modules"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["digits-app", "misbehave", "swap", "wine-app"]);

    // The image classifier: JSON pixels, top-3, labels from its granted environment.
    let (_, pixels) = input("digits_mlp");
    let expected = reference("digits_mlp").await;
    for i in 0..4 {
        let image = row(&pixels, i);
        let (status, answer) = post(&format!("{url}/apps/digits?k=3"), json!({ "pixels": image })).await;
        assert_eq!(status, 200, "{answer}");
        let p = row(probabilities(&expected), i);
        let best = argmax(&p);
        let labels = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
        assert_eq!(answer["graph"], "digits");
        assert_eq!(answer["top"].as_array().unwrap().len(), 3);
        assert_eq!(answer["top"][0]["label"], labels[best], "{answer}");
        assert_eq!(answer["top"][0]["score"].as_f64().unwrap() as f32, p[best], "{answer}");
        // The same digit as a 32×32 scanned page (dark ink on white): decoded, shrunk, same class.
        let mut pgm = b"P5\n# a test page\n32 32\n255\n".to_vec();
        for y in 0..32 {
            for x in 0..32 {
                let ink = image[(y / 4) * 8 + x / 4] / 16.0;
                pgm.push(((1.0 - ink) * 255.0).round() as u8);
            }
        }
        let response = tls::client()
            .unwrap()
            .post(format!("{url}/apps/digits/classify"))
            .header("content-type", "image/x-portable-graymap")
            .body(pgm)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["top"][0]["label"], labels[best], "{answer}");
    }
    let (status, answer) = post(&format!("{url}/apps/digits"), json!({ "pixels": [1, 2, 3] })).await;
    assert_eq!((status, answer["error"].as_str().unwrap()), (400, "expected 64 pixels (8×8), got 3"));

    // The tabular pipeline: a record by feature name, in any order; a list; integrity refusals.
    let (_, features) = input("wine_tabular");
    let expected = reference("wine_tabular").await;
    let record = |i: usize| -> Value {
        let values = row(&features, i);
        Value::Object(
            WINE.iter()
                .rev()
                .map(|n| (n.to_string(), json!(values[WINE.iter().position(|w| w == n).unwrap()])))
                .collect(),
        )
    };
    let (status, answer) = post(&format!("{url}/wine-app"), record(0)).await;
    assert_eq!(status, 200, "{answer}");
    let p = row(probabilities(&expected), 0);
    assert_eq!(answer["class"], format!("class_{}", argmax(&p)));
    assert_eq!(answer["score"].as_f64().unwrap() as f32, p[argmax(&p)]);
    let (status, answer) = post(&format!("{url}/wine-app"), json!([record(1), record(2), record(3)])).await;
    assert_eq!(status, 200, "{answer}");
    for i in 1..4 {
        let p = row(probabilities(&expected), i);
        assert_eq!(answer["predictions"][i - 1]["class"], format!("class_{}", argmax(&p)), "{answer}");
    }
    let mut renamed = record(0);
    let value = renamed.as_object_mut().unwrap().remove("hue").unwrap();
    renamed["colour_hue"] = value;
    let (status, answer) = post(&format!("{url}/wine-app"), renamed).await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().starts_with("record 0: unknown field \"colour_hue\""), "{answer}");
    let mut missing = record(0);
    missing.as_object_mut().unwrap().remove("proline");
    assert_eq!(post(&format!("{url}/wine-app"), missing).await.1["error"], "record 0: \"proline\" is missing");
    let mut text = record(0);
    text["ash"] = json!("high");
    assert_eq!(
        post(&format!("{url}/wine-app"), text).await.1["error"],
        "record 0: \"ash\" is \"high\", expected a number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_modules_get_clean_errors_while_good_requests_succeed() {
    let url = host(&temp("isolation"), "").await;
    let good = {
        let url = url.clone();
        tokio::spawn(async move {
            let (_, features) = input("wine_tabular");
            let values = row(&features, 0);
            let record = Value::Object(WINE.iter().zip(&values).map(|(n, v)| (n.to_string(), json!(v))).collect());
            let mut statuses = Vec::new();
            for _ in 0..30 {
                statuses.push(post(&format!("{url}/wine-app"), record.clone()).await.0);
            }
            statuses
        })
    };
    let client = tls::client().unwrap();
    let call = |path: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.get(format!("{url}/misbehave/{path}")).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap()["error"].as_str().unwrap_or_default().to_owned())
        }
    };
    let (spin, grow, trap, silent) = tokio::join!(call("loop"), call("grow"), call("trap"), call("silent"));
    assert_eq!(spin, (504, "module \"misbehave\" ran past its 300 ms of execution time; it was stopped".to_owned()));
    assert_eq!(grow.0, 500, "{grow:?}");
    assert!(grow.1.contains("over its cap of 16777216 bytes"), "{grow:?}");
    assert_eq!(trap.0, 500, "{trap:?}");
    assert!(trap.1.starts_with("module \"misbehave\" trapped: "), "{trap:?}");
    assert_eq!(silent.0, 500, "{silent:?}");
    let oversize = client.post(format!("{url}/misbehave/echo")).body(vec![0u8; 65537]).send().await.unwrap();
    assert_eq!(oversize.status(), 413);
    let body: Value = oversize.json().await.unwrap();
    assert_eq!(body["error"], "the request body is over 65536 bytes");

    let statuses = good.await.unwrap();
    assert!(statuses.iter().all(|&s| s == 200), "good requests failed beside the bad ones: {statuses:?}");
    // The module itself serves on after each failure, from a fresh instance.
    let ok = client.get(format!("{url}/misbehave/fine")).send().await.unwrap();
    assert_eq!((ok.status().as_u16(), ok.text().await.unwrap()), (200, "ok".to_owned()));

    // The sandbox: only the granted environment; no files, no network; no graph from bytes.
    let (status, seen) = get(&format!("{url}/misbehave/sandbox")).await;
    assert_eq!(status, 200);
    assert_eq!(seen, json!({ "env": ["GRANTED"], "file": false, "net": false, "root_entries": null }));
    let (_, nn) = get(&format!("{url}/misbehave/nn-load")).await;
    assert!(nn["error"].as_str().unwrap().starts_with("not-found: no graph \"no-such-graph\""), "{nn}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_swapped_under_load_loses_no_request() {
    let dir = temp("reload");
    let url = host(&dir, "").await;
    let before = get(&format!("{url}/v2/modules")).await.1;
    let hash = |modules: &Value| {
        modules["modules"].as_array().unwrap().iter().find(|m| m["name"] == "swap").unwrap()["hash"].clone()
    };
    // Four clients call the module without pause while its file is replaced (atomically, as a
    // deploy would): each answer comes from the old module (200 "ok") or the new (405).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            tokio::spawn(async move {
                let client = tls::client().unwrap();
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = client.get(format!("{url}/swap")).send().await.unwrap();
                    seen.push(response.status().as_u16());
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    std::fs::copy(guests().join("tabular.wasm"), dir.join("swap.wasm.new")).unwrap();
    std::fs::rename(dir.join("swap.wasm.new"), dir.join("swap.wasm")).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while hash(&get(&format!("{url}/v2/modules")).await.1) == hash(&before) {
        assert!(tokio::time::Instant::now() < deadline, "the new module was not swapped in");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.unwrap());
    }
    assert!(all.iter().all(|&s| s == 200 || s == 405), "a request failed during the swap: {all:?}");
    assert!(all.contains(&200) && all.last() == Some(&405), "{all:?}");

    // A file that is not a component: reported, and the last good module keeps serving.
    std::fs::write(dir.join("swap.wasm.new"), b"\0asm not really").unwrap();
    std::fs::rename(dir.join("swap.wasm.new"), dir.join("swap.wasm")).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let error = loop {
        let modules = get(&format!("{url}/v2/modules")).await.1;
        let swap = modules["modules"].as_array().unwrap().iter().find(|m| m["name"] == "swap").unwrap().clone();
        if let Some(error) = swap.get("reload_error") {
            break error.as_str().unwrap().to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "the broken module was not reported");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(error.starts_with("module \"swap\" ("), "{error}");
    assert!(error.contains("cannot run here"), "{error}");
    let still = tls::client().unwrap().get(format!("{url}/swap")).send().await.unwrap();
    assert_eq!(still.status(), 405);

    // A model file replaced in place: version 2 (the same graph, its metadata says so) is served.
    assert_eq!(get(&format!("{url}/v2/models/wine")).await.1["versions"], json!(["1"]));
    let mut model = std::fs::read(dir.join("wine.onnx")).unwrap();
    // A ModelProto metadata_props entry (field 14) appended: protobuf merges it into the model.
    model.extend([0x72, 12, 0x0a, 7]);
    model.extend(b"version");
    model.extend([0x12, 1, b'2']);
    std::fs::write(dir.join("wine.onnx.new"), model).unwrap();
    std::fs::rename(dir.join("wine.onnx.new"), dir.join("wine.onnx")).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while get(&format!("{url}/v2/models/wine")).await.1["versions"] != json!(["2"]) {
        assert!(tokio::time::Instant::now() < deadline, "the new model version was not swapped in");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, features) = input("wine_tabular");
    let record = Value::Object(WINE.iter().zip(row(&features, 0)).map(|(n, v)| (n.to_string(), json!(v))).collect());
    assert_eq!(post(&format!("{url}/wine-app"), record).await.0, 200);
}

#[test]
fn bad_module_configurations_are_named() {
    let dir = temp("config");
    let write = |text: &str| {
        let file = dir.join("edge.toml");
        std::fs::write(&file, text).unwrap();
        edge::Config::load(&file).unwrap_err().to_string()
    };
    let e = write("[[modules]]\nname = \"a\"\npath = \"a.wasm\"\nroute = \"/v2/x\"\n");
    assert!(
        e.ends_with(
            "module \"a\": route \"/v2/x\" must be /segment[/segment…] of letters, digits, '-', '_' or '.', outside /v2"
        ),
        "{e}"
    );
    let e = write("[[modules]]\nname = \"a\"\npath = \"a.wasm\"\ngraphs = [\"nope\"]\n");
    assert!(e.ends_with("module \"a\" names graph \"nope\", which is not a configured model"), "{e}");
    let e = write(
        "[[modules]]\nname = \"a\"\npath = \"a.wasm\"\n[[modules]]\nname = \"b\"\npath = \"b.wasm\"\nroute = \"/a\"\n",
    );
    assert!(e.ends_with("route \"/a\" is used by two modules"), "{e}");
}
