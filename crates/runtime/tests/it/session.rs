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
