//! The gate in front of the GPU engine: each step refuses with a reason naming what failed.

use runtime::{BackendChoice, Engine, Error, Refusal, Tensor};

use crate::{case, gpu_available, session};

fn refusal(name: &str, dims: &[(&str, u64)]) -> Refusal {
    match session(&case(name).model, BackendChoice::Gpu, dims) {
        Err(Error::EngineRefused { engine: Engine::Gpu, reason }) => reason,
        Err(other) => panic!("{name}: expected a GPU refusal, got {other}"),
        Ok(_) => panic!("{name}: expected a GPU refusal, got a GPU session"),
    }
}

#[test]
fn free_dims_are_refused_with_the_dim_named() {
    if !gpu_available() {
        return;
    }
    assert_eq!(refusal("digits_cnn", &[]), Refusal::FreeDim { input: "image".into(), dim: "N".into() });
}

#[test]
fn f64_graphs_are_refused_naming_the_tensor() {
    if !gpu_available() {
        return;
    }
    let refused = refusal("dtypes", &[]);
    assert_eq!(refused, Refusal::UnsupportedDType { tensor: "f64".into(), dtype: "f64".into() });
}

#[test]
fn integer_ids_and_labels_run_on_the_gpu() {
    if !gpu_available() {
        return;
    }
    // Token ids in (negative ones count from the end), and an ArgMax label out: both exact.
    for (name, n) in [("embedding", 2), ("wine_tabular", 16)] {
        let case = case(name);
        let session = session(&case.model, BackendChoice::Gpu, &[("N", n)]).unwrap();
        assert_eq!(session.report().engine, Engine::Gpu, "{name}");
        let outputs = pollster::block_on(session.run(case.inputs.clone())).unwrap();
        for ((output, actual), expected) in outputs.iter().zip(&case.expected) {
            assert_eq!(actual.dtype(), expected.dtype(), "{name} {output}");
            let comparison = runtime::compare(actual, expected, Default::default());
            assert!(comparison.passed(), "{name} {output}: {}", comparison.summary());
        }
    }
    // An id past the table fails the run, naming the node: the device's answer would be made up.
    let case = case("embedding");
    let session = session(&case.model, BackendChoice::Gpu, &[("N", 1)]).unwrap();
    let ids = Tensor::new(&[1, 4], vec![0i64, 1, 10, 2]).unwrap();
    let error = pollster::block_on(session.run(vec![("ids".into(), ids)])).unwrap_err().to_string();
    assert!(error.contains("`embed`") && error.contains("index out of range"), "{error}");
}

#[test]
fn auto_records_why_the_gpu_was_refused() {
    let session = session(&case("dtypes").model, BackendChoice::Auto, &[]).unwrap();
    let report = session.report();
    assert_eq!(report.engine, Engine::Cpu);
    let [(Engine::Gpu, reason)] = report.refused.as_slice() else { panic!("{report:?}") };
    assert!(
        matches!(
            reason,
            Refusal::UnsupportedDType { .. } | Refusal::SoftwareAdapter { .. } | Refusal::NoAdapter | Refusal::NotBuilt
        ),
        "unexpected reason: {reason}"
    );
}

#[test]
fn gpu_sessions_carry_the_probe_comparison() {
    if !gpu_available() {
        return;
    }
    let session = session(&case("digits_cnn").model, BackendChoice::Gpu, &[("N", 2)]).unwrap();
    let report = session.report();
    let probe = report.probe.as_ref().expect("the probe runs by default");
    assert_eq!(probe.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["logits", "probabilities"]);
    assert!(probe.iter().all(|(_, c)| c.passed() && c.total == 20));
    assert!(report.adapter.is_some());
}

#[test]
fn corrupted_models_never_panic_in_the_gpu_engine() {
    if !gpu_available() {
        return;
    }
    // What decodes goes through tract's front end and our compiler; every answer is a session or a
    // refusal, and a session built is one whose probe passed, so it runs.
    let bytes = case("digits_cnn").bytes;
    let mut sessions = 0;
    for (i, position) in (0..bytes.len()).step_by(bytes.len() / 160).enumerate() {
        let mut corrupt = bytes.clone();
        corrupt[position] ^= 0x5a ^ (i as u8);
        let Ok(model) = runtime::Model::from_bytes(&corrupt) else { continue };
        match session(&model, BackendChoice::Gpu, &[("N", 2)]) {
            Ok(session) => {
                let inputs = runtime::synthetic_inputs(session.inputs(), &Default::default(), 7).unwrap();
                pollster::block_on(session.run(inputs)).unwrap();
                sessions += 1;
            }
            Err(Error::EngineRefused { reason: Refusal::Panicked { message }, .. }) => {
                // tract's own analysis is known to panic on some corruptions (caught: see unwind.rs);
                // a panic in our compiler or kernels is a bug.
                assert!(message.starts_with("tract"), "byte {position}: the GPU engine panicked: {message}");
            }
            Err(_) => {}
        }
    }
    assert!(sessions > 0, "no corruption left a runnable model: the test checks nothing");
}
