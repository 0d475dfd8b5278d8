//! Preparing a model for wonnx: every shape fixed and written down, and the rewrites that keep the
//! maths identical while avoiding variants wonnx lacks.

use std::collections::{HashMap, HashSet};

use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_shape_proto::{Dimension, dimension::Value as DimValue};
use tract_onnx::pb::type_proto::{Tensor as TypeTensor, Value as TypeValue};
use tract_onnx::prelude::{DatumType, Framework, InferenceModelExt, OutletId};

use super::rules;
use crate::backend::Refusal;
use crate::gate::{check_inputs, fixed_shape};
use crate::model::{Model, node_name};
use crate::tensor::DType;

/// A model wonnx can compile, and how to read its results.
pub(crate) struct Prepared {
    pub bytes: Vec<u8>,
    pub inputs: Vec<String>,
    pub outputs: Vec<(String, Vec<usize>)>,
}

/// A tensor's inferred element type and shape.
pub(crate) struct Fact {
    pub datum_type: DatumType,
    pub shape: Vec<usize>,
}

pub(crate) fn prepare(model: &Model) -> Result<Prepared, Refusal> {
    check_inputs(model)?;
    let mut proto = model.proto().clone();
    constants_to_initializers(graph_mut(&mut proto)?);
    let mut facts = infer_shapes(&proto)?;
    let graph = graph_mut(&mut proto)?;
    transpose_gemm_b(graph)?;
    for tensor in &graph.initializer {
        let datum_type = DType::from_onnx(tensor.data_type).map(datum_type).unwrap_or(DatumType::String);
        let shape = tensor.dims.iter().map(|&d| d.max(0) as usize).collect();
        facts.insert(tensor.name.clone(), Fact { datum_type, shape });
    }
    for input in model.inputs() {
        facts.insert(input.name.clone(), Fact { datum_type: DatumType::F32, shape: fixed_shape(input)? });
    }
    rules::check(graph, &facts, model.onnx_opset())?;

    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    graph.value_info = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter())
        .filter(|name| !outputs.contains(name.as_str()))
        .filter_map(|name| facts.get(name).map(|fact| value_info(name, fact)))
        .collect();
    let mut prepared_outputs = Vec::with_capacity(graph.output.len());
    for output in &mut graph.output {
        let fact = facts.get(&output.name).ok_or_else(|| Refusal::ShapeInference {
            message: format!("no shape was inferred for output `{}`", output.name),
        })?;
        *output = value_info(&output.name, fact);
        prepared_outputs.push((output.name.clone(), fact.shape.clone()));
    }
    Ok(Prepared {
        bytes: proto.encode_to_vec(),
        inputs: model.inputs().iter().map(|i| i.name.clone()).collect(),
        outputs: prepared_outputs,
    })
}

/// The graph, which `Model` guarantees; the check keeps this path free of panics all the same.
fn graph_mut(proto: &mut pb::ModelProto) -> Result<&mut pb::GraphProto, Refusal> {
    proto.graph.as_mut().ok_or_else(|| Refusal::ShapeInference { message: "the model has no graph".to_owned() })
}

/// Shapes and types of every named tensor, from tract's analysis of the model with fixed inputs.
fn infer_shapes(proto: &pb::ModelProto) -> Result<HashMap<String, Fact>, Refusal> {
    let typed =
        crate::unwind::guarded_sync(|| tract_onnx::onnx().model_for_proto_model(proto).and_then(|m| m.into_typed()))
            .map_err(|panic| Refusal::Panicked { message: format!("tract, while inferring shapes: {}", panic.0) })?
            .map_err(|e| Refusal::ShapeInference { message: format!("{e:#}") })?;
    let mut facts = HashMap::new();
    for node in typed.nodes() {
        for (ix, output) in node.outputs.iter().enumerate() {
            let Some(label) = typed.outlet_label(OutletId::new(node.id, ix)) else { continue };
            let shape = output.fact.shape.as_concrete().ok_or_else(|| Refusal::ShapeInference {
                message: format!("the shape of `{label}` ({:?}) depends on the input values", output.fact.shape),
            })?;
            facts.insert(label.to_owned(), Fact { datum_type: output.fact.datum_type, shape: shape.to_vec() });
        }
    }
    Ok(facts)
}

fn value_info(name: &str, fact: &Fact) -> pb::ValueInfoProto {
    let dim =
        fact.shape.iter().map(|&d| Dimension { denotation: String::new(), value: Some(DimValue::DimValue(d as i64)) });
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(TypeValue::TensorType(TypeTensor {
                elem_type: onnx_elem_type(fact.datum_type),
                shape: Some(pb::TensorShapeProto { dim: dim.collect() }),
            })),
        }),
        doc_string: String::new(),
    }
}

fn datum_type(dtype: DType) -> DatumType {
    match dtype {
        DType::F32 => DatumType::F32,
        DType::F64 => DatumType::F64,
        DType::I64 => DatumType::I64,
        DType::I32 => DatumType::I32,
        DType::U8 => DatumType::U8,
        DType::I8 => DatumType::I8,
        DType::Bool => DatumType::Bool,
    }
}

fn onnx_elem_type(dt: DatumType) -> i32 {
    match dt {
        DatumType::F32 => 1,
        DatumType::U8 => 2,
        DatumType::I8 => 3,
        DatumType::I32 => 6,
        DatumType::I64 => 7,
        DatumType::Bool => 9,
        DatumType::F64 => 11,
        _ => 0,
    }
}

/// `Constant` nodes become initializers, which wonnx reads directly (PyTorch exports reshape
/// targets and scalars this way).
fn constants_to_initializers(graph: &mut pb::GraphProto) {
    let mut kept = Vec::with_capacity(graph.node.len());
    for node in std::mem::take(&mut graph.node) {
        let value = (node.op_type == "Constant" && node.domain.is_empty() && node.output.len() == 1)
            .then(|| node.attribute.iter().find(|a| a.name == "value").and_then(|a| a.t.clone()))
            .flatten();
        match value {
            Some(mut tensor) => {
                tensor.name = node.output[0].clone();
                graph.initializer.push(tensor);
            }
            None => kept.push(node),
        }
    }
    graph.node = kept;
}

/// wonnx has no `Gemm` with `transB=1` (the layout PyTorch exports for `Linear`): when B is an
/// initializer, store it transposed and clear the flag. The product is the same.
fn transpose_gemm_b(graph: &mut pb::GraphProto) -> Result<(), Refusal> {
    let mut added = Vec::new();
    for (ix, node) in graph.node.iter_mut().enumerate() {
        if node.op_type != "Gemm" || node.input.len() < 2 {
            continue;
        }
        if !node.attribute.iter().any(|a| a.name == "transB" && a.i == 1) {
            continue;
        }
        let b_name = node.input[1].clone();
        let Some(b) = graph.initializer.iter().find(|t| t.name == b_name) else {
            return Err(Refusal::UnsupportedOp {
                node: node_name(node, ix),
                op: "Gemm".to_owned(),
                detail: "transB=1 needs B to be an initializer, so it can be stored transposed".to_owned(),
            });
        };
        let transposed = transpose_2d(b).map_err(|detail| Refusal::UnsupportedOp {
            node: node_name(node, ix),
            op: "Gemm".to_owned(),
            detail,
        })?;
        node.attribute.iter_mut().filter(|a| a.name == "transB").for_each(|a| a.i = 0);
        let new_name = format!("{b_name}__sextant_transposed_{ix}");
        node.input[1] = new_name.clone();
        added.push(pb::TensorProto { name: new_name, ..transposed });
    }
    graph.initializer.extend(added);
    let used: HashSet<&str> = graph.node.iter().flat_map(|n| n.input.iter().map(String::as_str)).collect();
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    graph.initializer.retain(|t| used.contains(t.name.as_str()) || outputs.contains(t.name.as_str()));
    Ok(())
}

fn transpose_2d(tensor: &pb::TensorProto) -> Result<pb::TensorProto, String> {
    let loaded = tract_onnx::tensor::load_tensor(&tract_onnx::data_resolver::FopenDataResolver, tensor, None)
        .map_err(|e| format!("B could not be read: {e:#}"))?;
    let [rows, cols] = *loaded.shape() else {
        return Err(format!("B has shape {:?}, expected 2 dims", loaded.shape()));
    };
    let values = loaded
        .try_as_plain_ram()
        .and_then(|view| view.as_slice::<f32>())
        .map_err(|_| format!("B is {:?}, expected f32", loaded.datum_type()))?;
    let mut raw = Vec::with_capacity(values.len() * 4);
    for c in 0..cols {
        for r in 0..rows {
            raw.extend_from_slice(&values[r * cols + c].to_le_bytes());
        }
    }
    Ok(pb::TensorProto { dims: vec![cols as i64, rows as i64], data_type: 1, raw_data: raw, ..Default::default() })
}
