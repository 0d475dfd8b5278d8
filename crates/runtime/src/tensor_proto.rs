//! Checks on ONNX `TensorProto`s before tract loads them.
//!
//! tract 0.23 `unimplemented!`s on raw data of types it cannot load raw (strings, complex, 8-bit
//! floats) and trusts dims and data lengths. A panic in wasm kills the page, so every tensor from
//! outside (input files, and every initializer or tensor attribute of a model, subgraphs included)
//! passes through here first.

use tract_onnx::pb::{self, TensorProto};

use crate::tensor::{element_count, onnx_type_name};

/// Checks that tract can load `tensor` without panicking: a known type, dims that do not overflow,
/// and as much data as the dims say. The error says which tensor (`role` and name) and why.
pub(crate) fn check(tensor: &TensorProto, role: &str) -> Result<(), String> {
    let bad = |detail: String| format!("{role} `{}`: {detail}", tensor.name);
    let dims = tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(format!("negative dim {d}"))))
        .collect::<Result<Vec<usize>, String>>()?;
    // Bytes per element for the types tract loads from raw data; strings only from `string_data`.
    let size = match tensor.data_type {
        2 | 3 | 9 => 1,   // u8, i8, bool
        4 | 5 | 10 => 2,  // u16, i16, f16
        1 | 6 | 12 => 4,  // f32, i32, u32
        7 | 11 | 13 => 8, // i64, f64, u64
        8 if tensor.raw_data.is_empty() => 0,
        code => return Err(bad(format!("element type {} is not supported", onnx_type_name(code)))),
    };
    // Strings are heap values: tract holds one `String` per element.
    let slot = if tensor.data_type == 8 { std::mem::size_of::<String>() } else { size };
    let count = element_count(&dims, slot).ok_or_else(|| bad(format!("dims {dims:?} overflow")))?;
    if tensor.data_location == Some(pb::tensor_proto::DataLocation::External as i32) {
        return Err(bad("external data is not supported: embed the weights in the model".to_owned()));
    }
    let (actual, expected) = if !tensor.raw_data.is_empty() {
        (tensor.raw_data.len(), count * size)
    } else {
        let typed = match tensor.data_type {
            1 => tensor.float_data.len(),
            11 => tensor.double_data.len(),
            7 | 13 => tensor.int64_data.len(),
            8 => tensor.string_data.len(),
            _ => tensor.int32_data.len(),
        };
        (typed, count)
    };
    if actual != expected {
        let unit = if tensor.raw_data.is_empty() { "values" } else { "bytes" };
        return Err(bad(format!("dims {dims:?} need {expected} {unit} of data, found {actual}")));
    }
    Ok(())
}

/// Checks every tensor in a graph: initializers, tensor attributes, and those of subgraphs.
pub(crate) fn check_graph(graph: &pb::GraphProto) -> Result<(), String> {
    for tensor in &graph.initializer {
        check(tensor, "initializer")?;
    }
    for node in &graph.node {
        for attribute in &node.attribute {
            for tensor in attribute.t.iter().chain(&attribute.tensors) {
                check(tensor, &format!("attribute `{}` of node `{}`", attribute.name, node.name))?;
            }
            for subgraph in attribute.g.iter().chain(&attribute.graphs) {
                check_graph(subgraph)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(data_type: i32, dims: Vec<i64>, raw: usize) -> TensorProto {
        TensorProto { name: "t".into(), data_type, dims, raw_data: vec![0; raw], ..Default::default() }
    }

    #[test]
    fn tensors_tract_would_panic_on_are_errors() {
        let message = |t: TensorProto| check(&t, "input").unwrap_err();
        assert_eq!(message(tensor(8, vec![1], 4)), "input `t`: element type string is not supported");
        assert_eq!(message(tensor(14, vec![1], 8)), "input `t`: element type complex64 is not supported");
        assert_eq!(message(tensor(1, vec![-1], 4)), "input `t`: negative dim -1");
        assert_eq!(message(tensor(1, vec![3], 4)), "input `t`: dims [3] need 12 bytes of data, found 4");
        assert!(message(tensor(1, vec![i64::MAX, i64::MAX], 4)).contains("overflow"));
        assert!(check(&tensor(1, vec![2, 2], 16), "input").is_ok());
        let strings =
            TensorProto { data_type: 8, dims: vec![2], string_data: vec![b"a".to_vec(); 2], ..Default::default() };
        assert!(check(&strings, "input").is_ok());
    }
}
