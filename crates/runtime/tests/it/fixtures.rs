//! Every fixture reproduces onnxruntime within 1e-4 on the CPU engine, and on the GPU engine
//! wherever the gate admits it.

use runtime::{BackendChoice, Engine, Refusal, Tolerance, compare, free_dims_of};

use crate::{case, gpu_available, session};

fn check(name: &str, backend: BackendChoice) -> Engine {
    let case = case(name);
    let dims = free_dims_of(case.model.inputs(), &case.inputs);
    let dims: Vec<(&str, u64)> = dims.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let session = session(&case.model, backend, &dims).unwrap();
    let outputs = pollster::block_on(session.run(case.inputs.clone())).unwrap();
    assert_eq!(outputs.len(), case.expected.len());
    for ((output, actual), expected) in outputs.iter().zip(&case.expected) {
        let comparison = compare(actual, expected, Tolerance::default());
        assert!(comparison.passed(), "{name} on {}: output `{output}`: {}", session.engine(), comparison.summary());
    }
    session.engine()
}

#[test]
fn fixtures_match_onnxruntime_on_cpu() {
    for name in ["digits_mlp", "digits_cnn", "wine_tabular", "dtypes", "gpu_ops", "embedding"] {
        assert_eq!(check(name, BackendChoice::Cpu), Engine::Cpu);
    }
}

/// Models tract cannot plan from what they store run with the shapes their inputs bring: free
/// dims with no name or `-1` (two input sizes through one session, `Auto` falling back to the CPU
/// engine), and stored shapes that contradict the inputs.
#[test]
fn free_and_stale_shapes_are_planned_from_the_run_and_match_onnxruntime() {
    for (name, sets) in [("unet_free_dims", 2), ("unet_stale_shapes", 1)] {
        let model = case(name).model;
        let session = session(&model, BackendChoice::Auto, &[]).unwrap();
        assert_eq!(session.engine(), Engine::Cpu, "{name}: {:?}", session.report());
        for set in [0, 1, 0].into_iter().filter(|&s| s < sets) {
            let case = crate::case_with_data_set(name, set);
            let outputs = pollster::block_on(session.run(case.inputs.clone())).unwrap();
            let comparison = compare(&outputs[0].1, &case.expected[0], Tolerance::default());
            assert!(comparison.passed(), "{name}, data set {set}: {}", comparison.summary());
        }
    }
}

#[test]
fn cnn_mlp_and_allowlisted_ops_run_on_the_gpu_and_match_onnxruntime() {
    if !gpu_available() {
        return;
    }
    for name in ["digits_mlp", "digits_cnn", "gpu_ops"] {
        assert_eq!(check(name, BackendChoice::Gpu), Engine::Gpu);
    }
}

#[test]
fn auto_uses_the_gpu_only_on_hardware_adapters() {
    if !gpu_available() {
        return;
    }
    let case = case("digits_cnn");
    let session = session(&case.model, BackendChoice::Auto, &[("N", 16)]).unwrap();
    let adapter = session.report().adapter.clone().unwrap_or_default();
    let software = ["llvmpipe", "lavapipe", "SwiftShader", "WARP"].iter().any(|s| adapter.contains(s));
    if software {
        assert_eq!(session.engine(), Engine::Cpu);
        assert!(matches!(session.report().refused.as_slice(), [(Engine::Gpu, Refusal::SoftwareAdapter { .. })]));
    } else {
        assert_eq!(session.engine(), Engine::Gpu, "{:?}", session.report());
    }
}

#[test]
fn auto_falls_back_to_cpu_for_models_the_gate_refuses() {
    for name in ["wine_tabular", "dtypes"] {
        assert_eq!(check(name, BackendChoice::Auto), Engine::Cpu);
    }
}
