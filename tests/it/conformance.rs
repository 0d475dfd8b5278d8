//! The committed ONNX backend cases on every engine: never a wrong number, never a panic.

use crate::{gpu_available, json, sextant, test_data};

#[test]
fn committed_cases_pass_or_are_refused_with_a_reason() {
    let dir = test_data().join("conformance");
    let report = json(&sextant(&["conformance", dir.to_str().unwrap(), "--json"]));
    let summary = &report["summary"];
    for engine in ["cpu", "gpu"] {
        assert_eq!(summary[engine]["wrong"], 0, "{engine}: {summary}");
        assert_eq!(summary[engine]["panicked"], 0, "{engine}: {summary}");
    }
    // tract runs every case but sequences, strings, Gradient, Expand with a variable-rank shape and
    // multi-parameter PReLU (a tract translation bug), all of which it refuses with a reason.
    assert_eq!(summary["cpu"]["pass"], 113, "{summary}");
    let outcomes = report["outcomes"].as_array().unwrap();
    for outcome in outcomes.iter().filter(|o| o["verdict"] == "refused") {
        assert!(!outcome["reason"].as_str().unwrap().is_empty(), "{outcome}");
    }
    if gpu_available() {
        // The engine's table admits exactly the cases proven on lavapipe: a drop is a regression,
        // a rise a kernel whose count belongs here.
        assert_eq!(summary["gpu"]["pass"], 95, "{summary}");
    }
}

#[test]
fn fixtures_pass_on_both_engines() {
    let dir = test_data().join("models");
    let report = json(&sextant(&["conformance", dir.to_str().unwrap(), "--json"]));
    let summary = &report["summary"];
    // The unet cases too: planned from the run's shapes (free dims, stale stored shapes).
    assert_eq!(summary["cpu"]["pass"], 8, "{summary}");
    if gpu_available() {
        // Integer ids (embedding), an ArgMax label (wine_tabular) included; refused, each named:
        // f64, a free dim, and stored shapes its front end still trusts.
        assert_eq!(summary["gpu"]["pass"], 5, "{summary}");
        let outcomes = report["outcomes"].as_array().unwrap();
        let refused: Vec<&str> = outcomes
            .iter()
            .filter(|o| o["engine"] == "gpu" && o["verdict"] != "pass")
            .map(|o| o["reason"].as_str().unwrap())
            .collect();
        assert_eq!(refused.len(), 3, "{refused:?}");
        for reason in ["tensor `f64` is f64", "input `x` has free dim", "shape inference failed"] {
            assert!(refused.iter().any(|r| r.contains(reason)), "{reason} in {refused:?}");
        }
    }
}
