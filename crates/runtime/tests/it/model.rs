//! Parsing and validating models: signature, metadata, and typed errors for bad bytes.

use runtime::{DType, Dim, Error, Model};

use crate::case;

#[test]
fn exposes_signature_metadata_and_ops() {
    let model = case("digits_cnn").model;
    let input = &model.inputs()[0];
    assert_eq!(input.name, "image");
    assert_eq!(input.dtype, Some(DType::F32));
    assert_eq!(input.shape, Some(vec![Dim::Symbolic("N".into()), Dim::Fixed(1), Dim::Fixed(8), Dim::Fixed(8)]));
    assert_eq!(input.shape_text(), "[N, 1, 8, 8]");
    assert_eq!(input.row_width(), Some(64), "a row is one 1x8x8 image");
    let free_inner =
        runtime::ValueInfo { shape: Some(vec![Dim::Fixed(1), Dim::Symbolic("T".into())]), ..input.clone() };
    assert_eq!(free_inner.row_width(), None);
    assert_eq!(runtime::ValueInfo { shape: Some(vec![]), ..input.clone() }.row_width(), Some(1));
    let outputs: Vec<_> = model.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["logits", "probabilities"]);
    assert_eq!(model.metadata().get("name").map(String::as_str), Some("digits-cnn"));
    assert_eq!(model.onnx_opset(), 13);
    assert_eq!(model.op_histogram().get("Conv"), Some(&1));
    assert_eq!(model.producer().0, "sextant-fixtures");
    assert_eq!(model.symbolic_dims().into_iter().collect::<Vec<_>>(), ["N"]);
}

#[test]
fn truncated_models_are_errors_unless_only_trailing_metadata_is_lost() {
    // Protobuf has no top-level framing: a cut between two whole `metadata_props` entries (the
    // fields after the graph) leaves a valid model. Any other cut must be an error, never a panic.
    let case = case("digits_cnn");
    let full = &case.model;
    let mut accepted = 0;
    for len in 0..case.bytes.len() {
        if let Ok(model) = Model::from_bytes(&case.bytes[..len]) {
            assert_eq!(model.inputs(), full.inputs(), "cut at {len}");
            assert_eq!(model.outputs(), full.outputs(), "cut at {len}");
            assert_eq!(model.op_histogram(), full.op_histogram(), "cut at {len}");
            assert!(model.metadata().len() < full.metadata().len(), "cut at {len}");
            accepted += 1;
        }
    }
    assert!(accepted <= full.metadata().len(), "{accepted} cuts accepted");
}

#[test]
fn flipped_bytes_never_panic() {
    // Corruptions may still decode (protobuf is lenient); what matters is an answer, not a panic,
    // and that building a session from whatever decodes answers too.
    let bytes = case("digits_mlp").bytes;
    for (i, position) in (0..bytes.len()).step_by(97).enumerate() {
        let mut corrupt = bytes.clone();
        corrupt[position] ^= 0x5a ^ (i as u8);
        if let Ok(model) = Model::from_bytes(&corrupt) {
            let _ = crate::session(&model, runtime::BackendChoice::Cpu, &[]);
        }
    }
}

#[test]
fn structural_errors_name_the_problem() {
    let err = Model::from_bytes(b"").unwrap_err();
    assert_eq!(err.to_string(), "invalid model: the model is empty (0 bytes)");
    // A valid protobuf message with no graph: field 1 (ir_version) = 7.
    let err = Model::from_bytes(&[0x08, 0x07]).unwrap_err();
    assert_eq!(err.to_string(), "invalid model: it has no graph (is this an ONNX model file?)");
    assert!(matches!(Model::from_bytes(&[0x0a, 0xff]).unwrap_err(), Error::Decode { .. }));
}
