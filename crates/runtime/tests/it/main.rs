//! Integration tests of the runtime on its committed fixtures (see `test_data/generate.py`).

// Tests unwrap: a panic is a failure with a message.
#![allow(clippy::unwrap_used)]

mod fixtures;
mod gpu_gate;
mod model;
mod session;

use std::path::{Path, PathBuf};

use runtime::{BackendChoice, Model, Refusal, Session, SessionOptions, Tensor, onnx_pb};

pub fn test_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

/// A fixture in ONNX backend test layout: the model, its inputs and onnxruntime's outputs.
#[derive(Debug)]
pub struct Case {
    pub model: Model,
    pub bytes: Vec<u8>,
    pub inputs: Vec<(String, Tensor)>,
    pub expected: Vec<Tensor>,
}

pub fn case(name: &str) -> Case {
    case_with_data_set(name, 0)
}

/// A case with the inputs and outputs of its `test_data_set_{set}`.
pub fn case_with_data_set(name: &str, set: usize) -> Case {
    let dir = test_data().join("models").join(name);
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    let model = Model::from_bytes(&bytes).unwrap();
    let read = |prefix: &str| -> Vec<Vec<u8>> {
        (0..)
            .map(|i| dir.join(format!("test_data_set_{set}")).join(format!("{prefix}_{i}.pb")))
            .take_while(|p| p.exists())
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    };
    let inputs = read("input").iter().map(|b| (onnx_pb::name(b).unwrap(), onnx_pb::decode(b).unwrap())).collect();
    let expected = read("output").iter().map(|b| onnx_pb::decode(b).unwrap()).collect();
    Case { model, bytes, inputs, expected }
}

pub fn session(model: &Model, backend: BackendChoice, dims: &[(&str, u64)]) -> runtime::Result<Session> {
    let dims = dims.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    pollster::block_on(Session::new(model, &SessionOptions { backend, dims, ..SessionOptions::default() }))
}

/// Whether GPU tests can run here. Without an adapter they skip loudly, unless `SEXTANT_REQUIRE_GPU`
/// is set (CI sets it, with lavapipe installed): then a missing adapter fails the test.
#[allow(clippy::disallowed_methods)] // tests are not the core: they may read their environment
pub fn gpu_available() -> bool {
    let model = case("digits_mlp").model;
    match session(&model, BackendChoice::Gpu, &[("N", 1)]) {
        Err(runtime::Error::EngineRefused { reason: Refusal::NoAdapter | Refusal::Device { .. }, .. }) => {
            assert!(
                std::env::var_os("SEXTANT_REQUIRE_GPU").is_none(),
                "SEXTANT_REQUIRE_GPU is set but no GPU adapter was found (install mesa-vulkan-drivers for lavapipe)"
            );
            eprintln!("\n\n*** SKIPPED: no GPU adapter on this machine; GPU engine tests did not run ***\n\n");
            false
        }
        _ => true,
    }
}
