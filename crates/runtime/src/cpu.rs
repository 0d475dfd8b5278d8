//! The CPU engine: tract, with its optimized plan built once per session.

use std::sync::Arc;

use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, IntoRunnable, IntoTValue, TValue, TVec, TypedRunnableModel,
};

use crate::backend::{Backend, Engine, LocalBoxFuture, Refusal};
use crate::model::{Dim, Model, is_default_domain, node_name};
use crate::tensor::{Element, TensorData};
use crate::{Error, Result, Tensor};

#[derive(Debug)]
pub(crate) struct CpuEngine {
    plan: Arc<TypedRunnableModel>,
    input_names: Vec<String>,
    index_checks: Vec<IndexCheck>,
}

/// An input that feeds `Gather` indices directly. tract panics on an out-of-range index (a wasm
/// page would die of it), so values are checked against the gathered axis before every run.
#[derive(Debug)]
struct IndexCheck {
    input: usize,
    node: String,
    axis_len: usize,
}

impl CpuEngine {
    pub(crate) fn new(model: &Model) -> Result<CpuEngine, Refusal> {
        // tract is not hardened against hostile graphs (a fuzzer finds panics in its analysis).
        let plan = crate::unwind::guarded_sync(|| {
            tract_onnx::onnx()
                .model_for_proto_model(model.proto())
                .and_then(|m| m.into_optimized())
                .and_then(|m| m.into_runnable())
        })
        .map_err(|panic| Refusal::Panicked { message: format!("tract, while building the plan: {}", panic.0) })?
        .map_err(|e| Refusal::Failed { message: format!("tract cannot run this model: {e:#}") })?;
        let input_names = model.inputs().iter().map(|i| i.name.clone()).collect();
        Ok(CpuEngine { plan, input_names, index_checks: index_checks(model) })
    }

    pub(crate) fn run_now(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        for check in &self.index_checks {
            if let Some(tensor) = inputs.get(check.input) {
                check_indices(check, &self.input_names[check.input], tensor)?;
            }
        }
        let inputs: TVec<TValue> = inputs.into_iter().map(to_tract).collect::<Result<_>>()?;
        let engine_error = |message: String| Error::Engine { engine: Engine::Cpu, message };
        let outputs = crate::unwind::guarded_sync(|| self.plan.run(inputs))
            .map_err(|panic| engine_error(format!("tract panicked: {}", panic.0)))?
            .map_err(|e| engine_error(format!("{e:#}")))?;
        outputs.into_iter().map(|t| from_tract(&t)).collect()
    }
}

fn index_checks(model: &Model) -> Vec<IndexCheck> {
    let Some(graph) = model.proto().graph.as_ref() else { return Vec::new() };
    let fixed_dims = |name: &str| -> Option<Vec<usize>> {
        if let Some(init) = graph.initializer.iter().find(|t| t.name == name) {
            return init.dims.iter().map(|&d| usize::try_from(d).ok()).collect();
        }
        let info = model.inputs().iter().find(|i| i.name == name)?;
        info.shape.as_ref()?.iter().map(|d| if let Dim::Fixed(v) = d { Some(*v as usize) } else { None }).collect()
    };
    graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, node)| node.op_type == "Gather" && is_default_domain(&node.domain))
        .filter_map(|(ix, node)| {
            let input = model.inputs().iter().position(|i| Some(&i.name) == node.input.get(1))?;
            let dims = fixed_dims(node.input.first()?)?;
            let axis = node.attribute.iter().find(|a| a.name == "axis").map_or(0, |a| a.i);
            let axis = if axis < 0 { axis + dims.len() as i64 } else { axis };
            let axis_len = *dims.get(usize::try_from(axis).ok()?)?;
            Some(IndexCheck { input, node: node_name(node, ix), axis_len })
        })
        .collect()
}

fn check_indices(check: &IndexCheck, name: &str, tensor: &Tensor) -> Result<()> {
    let values: Box<dyn Iterator<Item = i64>> = match tensor.data() {
        TensorData::I64(v) => Box::new(v.iter().copied()),
        TensorData::I32(v) => Box::new(v.iter().map(|&x| i64::from(x))),
        _ => return Ok(()),
    };
    let len = check.axis_len as i64;
    match values.enumerate().find(|&(_, v)| v < -len || v >= len) {
        None => Ok(()),
        Some((position, value)) => Err(Error::InputValue {
            name: name.to_owned(),
            detail: format!(
                "index {value} at position {position} is out of range for Gather `{}` over an axis of length {len} (expected {} to {})",
                check.node,
                -len,
                len - 1
            ),
        }),
    }
}

impl Backend for CpuEngine {
    fn run<'a>(&'a self, inputs: Vec<Tensor>) -> LocalBoxFuture<'a, Result<Vec<Tensor>>> {
        Box::pin(std::future::ready(self.run_now(inputs)))
    }
}

pub(crate) fn to_tract(tensor: Tensor) -> Result<TValue> {
    fn build<T: Element + tract_onnx::prelude::Datum>(shape: &[usize], values: &[T]) -> Result<TValue> {
        tract_onnx::prelude::Tensor::from_shape(shape, values)
            .map(IntoTValue::into_tvalue)
            .map_err(|e| Error::Engine { engine: Engine::Cpu, message: format!("{e:#}") })
    }
    let shape = tensor.shape();
    match tensor.data() {
        TensorData::F32(v) => build(shape, v),
        TensorData::F64(v) => build(shape, v),
        TensorData::I64(v) => build(shape, v),
        TensorData::I32(v) => build(shape, v),
        TensorData::U8(v) => build(shape, v),
        TensorData::I8(v) => build(shape, v),
        TensorData::Bool(v) => build(shape, v),
    }
}

/// Converts a tract tensor into ours; types we do not carry are an error naming the type.
pub(crate) fn from_tract(tensor: &tract_onnx::prelude::Tensor) -> Result<Tensor> {
    fn take<T: Element + tract_onnx::prelude::Datum>(tensor: &tract_onnx::prelude::Tensor) -> Result<Tensor> {
        let values = tensor
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<T>())
            .map_err(|e| Error::Engine { engine: Engine::Cpu, message: format!("{e:#}") })?;
        Tensor::new(tensor.shape(), values.to_vec())
    }
    match tensor.datum_type() {
        DatumType::F32 => take::<f32>(tensor),
        DatumType::F64 => take::<f64>(tensor),
        DatumType::I64 => take::<i64>(tensor),
        DatumType::I32 => take::<i32>(tensor),
        DatumType::U8 => take::<u8>(tensor),
        DatumType::I8 => take::<i8>(tensor),
        DatumType::Bool => take::<bool>(tensor),
        other => Err(Error::UnsupportedDType(format!("{other:?}").to_lowercase())),
    }
}
