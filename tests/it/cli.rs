//! `sextant inspect | run | bench | check` on the fixtures, and bad input of every kind.

use runtime::{Tolerance, compare, npy, onnx_pb};

use crate::{fixture, gpu_available, json, sextant};

fn path(p: std::path::PathBuf) -> String {
    p.to_str().unwrap().to_owned()
}

#[test]
fn run_writes_outputs_that_match_onnxruntime() {
    let dir = tempdir("run");
    let model = path(fixture("wine_tabular/model.onnx"));
    let input = path(fixture("wine_tabular/test_data_set_0/input_0.pb"));
    let out = path(dir.clone());
    let run = sextant(&["run", &model, "--input", &input, "--backend", "cpu", "--out", &out]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("engine: cpu"), "{}", run.stdout);
    assert!(run.stdout.contains("label: i64 [16]"), "{}", run.stdout);
    for (i, name) in ["logits", "probabilities", "label"].iter().enumerate() {
        let actual = npy::decode(&std::fs::read(dir.join(format!("{name}.npy"))).unwrap()).unwrap();
        let pb = std::fs::read(fixture("wine_tabular").join(format!("test_data_set_0/output_{i}.pb"))).unwrap();
        let comparison = compare(&actual, &onnx_pb::decode(&pb).unwrap(), Tolerance::default());
        assert!(comparison.passed(), "{name}: {}", comparison.summary());
    }
}

#[test]
fn run_accepts_named_npy_inputs_and_reports_json() {
    let dir = tempdir("npy");
    let pb = std::fs::read(fixture("digits_mlp/test_data_set_0/input_0.pb")).unwrap();
    let input = dir.join("pixels.npy");
    std::fs::write(&input, npy::encode(&onnx_pb::decode(&pb).unwrap())).unwrap();
    let arg = format!("pixels={}", input.display());
    let report = json(&sextant(&["run", &path(fixture("digits_mlp/model.onnx")), "--input", &arg, "--json"]));
    assert_eq!(report["outputs"][1]["name"], "probabilities");
    assert_eq!(report["outputs"][1]["shape"], serde_json::json!([16, 10]));
    assert!(report["latency_ms"].as_f64().unwrap() > 0.0);
    let engine = report["session"]["engine"].as_str().unwrap();
    assert!(engine == "gpu" || !report["session"]["refused"].as_array().unwrap().is_empty(), "{report}");
}

#[test]
fn inspect_shows_signature_and_engines() {
    let report = json(&sextant(&["inspect", &path(fixture("digits_cnn/model.onnx")), "--json"]));
    assert_eq!(report["inputs"][0]["name"], "image");
    assert_eq!(report["inputs"][0]["shape"][0], serde_json::json!({ "symbolic": "N" }));
    assert_eq!(report["ops"]["Conv"], 1);
    assert_eq!(report["metadata"]["name"], "digits-cnn");
    assert_eq!(report["engines"]["cpu"]["runnable"], true);
    assert_eq!(report["engines"]["gpu"]["runnable"], false, "free dim N");
    let text = sextant(&["inspect", &path(fixture("digits_cnn/model.onnx"))]);
    assert!(text.stdout.contains("image: f32 [N, 1, 8, 8]"), "{}", text.stdout);

    // What it costs here, per engine (free dims fixed at 1 for the measurement).
    let report = json(&sextant(&["inspect", &path(fixture("digits_cnn/model.onnx")), "--resources", "--json"]));
    let cpu = &report["resources"]["cpu"];
    assert!(cpu["load_ms"].as_f64().unwrap() > 0.0, "{report}");
    assert!(cpu["p50_ms"].as_f64().unwrap() <= cpu["p99_ms"].as_f64().unwrap(), "{report}");
    let gpu = &report["resources"]["gpu"];
    assert!(gpu["p50_ms"].is_number() || gpu["reason"].is_string(), "measured, or why not: {gpu}");
    assert_eq!(report["engines"]["gpu"]["runnable"], false, "the verdict itself is unchanged: free dim N");
    let text = sextant(&["inspect", &path(fixture("digits_cnn/model.onnx")), "--resources"]);
    assert!(text.stdout.contains("resources here (batch 1, synthetic inputs, 20 runs):"), "{}", text.stdout);
    assert!(text.stdout.contains("  cpu: load "), "{}", text.stdout);
}

#[test]
fn bench_reports_percentiles() {
    let model = path(fixture("digits_cnn/model.onnx"));
    let report = json(&sextant(&["bench", &model, "--backend", "cpu", "--iterations", "5", "--warmup", "1", "--json"]));
    let latency = &report["latency_ms"];
    assert!(latency["p50"].as_f64().unwrap() <= latency["p99"].as_f64().unwrap());
    assert!(report["load_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn check_compares_engines() {
    let model = path(fixture("digits_cnn/model.onnx"));
    let report = json(&sextant(&["check", &model, "--dim", "N=4", "--json"]));
    assert_eq!(report["agree"], true);
    if gpu_available() {
        assert_eq!(report["gpu"]["ran"], true, "{report}");
        let outputs = report["outputs"].as_array().unwrap();
        assert_eq!(outputs.len(), 2);
        assert!(outputs.iter().all(|o| o["comparison"]["mismatched"] == 0));
    }
}

#[test]
fn bad_input_gets_a_clear_error_and_no_panic() {
    let dir = tempdir("bad");
    let garbage = dir.join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    let truncated = dir.join("truncated.npy");
    let full = npy::encode(&runtime::Tensor::new(&[1, 64], vec![0f32; 64]).unwrap());
    std::fs::write(&truncated, &full[..full.len() - 3]).unwrap();
    let wrong_shape = dir.join("wrong.npy");
    std::fs::write(&wrong_shape, npy::encode(&runtime::Tensor::new(&[2, 3], vec![0f32; 6]).unwrap())).unwrap();
    let mlp = path(fixture("digits_mlp/model.onnx"));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["run".into(), "/nonexistent/model.onnx".into()], "while reading model"),
        (vec!["run".into(), path(garbage.clone())], "could not decode ONNX model"),
        (vec!["inspect".into(), path(garbage)], "while loading model"),
        (vec!["run".into(), mlp.clone()], "missing input `pixels`"),
        (vec!["run".into(), mlp.clone(), "--input".into(), path(truncated)], "needs 256 data bytes, the file has 253"),
        (vec!["run".into(), mlp.clone(), "--input".into(), path(wrong_shape.clone())], "expected dim 1 to be 64"),
        (
            vec!["run".into(), mlp.clone(), "--input".into(), format!("nope={}", wrong_shape.display())],
            "unexpected input `nope`",
        ),
        (vec!["run".into(), mlp.clone(), "--input".into(), "x.txt".into()], "expected a .npy or .pb file"),
        (vec!["run".into(), mlp.clone(), "--dim".into(), "N".into()], "expected NAME=VALUE"),
        (vec!["run".into(), mlp.clone(), "--dim".into(), "N=-1".into()], "not a non-negative integer"),
        (vec!["bench".into(), mlp.clone(), "--dim".into(), "B=2".into()], "unknown dim `B`"),
        (vec!["bench".into(), mlp, "--iterations".into(), "0".into()], "0 is not in 1.."),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = sextant(&args);
        assert_ne!(run.code, 0, "{args:?} should fail");
        assert!(run.stderr.contains(message), "{args:?}: expected `{message}` in:\n{}", run.stderr);
    }
}

pub fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sextant-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
