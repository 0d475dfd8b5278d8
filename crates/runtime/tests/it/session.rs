//! Sessions: input checks, dim overrides, and engine choice.

use runtime::{BackendChoice, Engine, Error, Tensor};

use crate::{case, session};

#[test]
fn dim_overrides_fix_the_signature_and_unknown_names_are_errors() {
    let model = case("digits_mlp").model;
    let session = session(&model, BackendChoice::Cpu, &[("N", 3)]).unwrap();
    assert_eq!(session.inputs()[0].shape_text(), "[3, 64]");
    let err = crate::session(&model, BackendChoice::Cpu, &[("batch", 3)]).unwrap_err();
    assert_eq!(err.to_string(), r#"unknown dim `batch` in overrides; the model's symbolic dims are ["N"]"#);
    let wrong = Tensor::new(&[2, 64], vec![0f32; 128]).unwrap();
    let err = pollster::block_on(session.run(vec![("pixels".into(), wrong)])).unwrap_err();
    assert_eq!(err.to_string(), "input `pixels`: expected dim 0 to be 3 (shape [3, 64]), got shape [2, 64]");
}

#[test]
fn free_batch_dims_take_any_size_on_the_cpu() {
    let model = case("digits_mlp").model;
    let session = session(&model, BackendChoice::Cpu, &[]).unwrap();
    for batch in [1, 5] {
        let input = Tensor::new(&[batch, 64], vec![1f32; batch * 64]).unwrap();
        let outputs = pollster::block_on(session.run(vec![("pixels".into(), input)])).unwrap();
        assert_eq!(outputs[1].1.shape(), [batch, 10]);
        let sums: Vec<f32> = outputs[1].1.as_slice::<f32>().unwrap().chunks(10).map(|c| c.iter().sum()).collect();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "softmax rows sum to 1: {sums:?}");
    }
}

#[test]
fn input_errors_name_expected_and_actual() {
    let model = case("wine_tabular").model;
    let session = session(&model, BackendChoice::Cpu, &[]).unwrap();
    let run = |inputs: Vec<(&str, Tensor)>| {
        let inputs = inputs.into_iter().map(|(n, t)| (n.to_owned(), t)).collect();
        pollster::block_on(session.run(inputs)).unwrap_err().to_string()
    };
    assert_eq!(run(vec![]), r#"missing input `features`; the model expects ["features"]"#);
    let ints = Tensor::new(&[1, 13], vec![0i64; 13]).unwrap();
    assert_eq!(run(vec![("features", ints)]), "input `features`: expected dtype f32, got i64");
    let flat = Tensor::new(&[13], vec![0f32; 13]).unwrap();
    assert_eq!(run(vec![("features", flat)]), "input `features`: expected rank 2 (shape [N, 13]), got shape [13]");
}

#[test]
fn cpu_choice_reports_no_refusals() {
    let session = session(&case("dtypes").model, BackendChoice::Cpu, &[]).unwrap();
    assert_eq!(session.engine(), Engine::Cpu);
    assert!(session.report().refused.is_empty());
    assert!(matches!(
        crate::session(&case("dtypes").model, BackendChoice::Cpu, &[("N", 1)]),
        Err(Error::UnknownDim { .. })
    ));
}

#[test]
fn out_of_range_gather_indices_are_an_input_error_not_a_panic() {
    // tract panics on them (found by fuzzing); in wasm that would kill the page.
    let model = case("embedding").model;
    let session = session(&model, BackendChoice::Cpu, &[]).unwrap();
    let run = |ids: Vec<i64>| {
        let ids = Tensor::new(&[1, 4], ids).unwrap();
        pollster::block_on(session.run(vec![("ids".into(), ids)]))
    };
    assert!(run(vec![0, 9, -10, -1]).is_ok());
    let err = run(vec![0, 1, 10, 2]).unwrap_err();
    assert!(matches!(err, Error::InputValue { .. }));
    assert_eq!(
        err.to_string(),
        "input `ids`: index 10 at position 2 is out of range for Gather `embed` over an axis of length 10 (expected -10 to 9)"
    );
    assert!(run(vec![-11, 0, 0, 0]).is_err());
}
