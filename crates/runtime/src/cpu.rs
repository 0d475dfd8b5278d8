//! The CPU engine: tract, with its optimized plan built once per session where tract can reason
//! about the model's free dims; where it cannot (dims with no name or `-1` it cannot unify after a
//! strided conv, a stored shape that contradicts the inputs), a plan per concrete input signature,
//! built at its first run, the last few kept.

use std::sync::{Arc, Mutex};

use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, IntoRunnable, IntoTValue, TValue, TVec, TypedRunnableModel,
};

use crate::backend::{Backend, Engine, LocalBoxFuture, Refusal};
use crate::model::{Dim, Model, is_default_domain, node_name};
use crate::tensor::{Element, TensorData};
use crate::{Error, Result, Tensor};

#[derive(Debug)]
pub(crate) struct CpuEngine {
    plans: Plans,
    input_names: Vec<String>,
    index_checks: Vec<IndexCheck>,
}

/// Plans kept for concrete input signatures (a model fed a few image sizes does not re-optimise
/// on every call).
const PLANS_PER_SESSION: usize = 4;

type Plan = Arc<TypedRunnableModel>;

#[derive(Debug)]
enum Plans {
    /// One plan for every input shape the signature allows.
    Symbolic(Plan),
    /// The symbolic plan could not be built: one per input signature, most recently used last.
    PerShape { model: Box<Model>, symbolic_error: String, built: Mutex<Vec<(Vec<Vec<usize>>, Plan)>> },
}

/// tract's optimized plan for `model`; tract is not hardened against hostile graphs (a fuzzer
/// finds panics in its analysis), so a panic is a refusal too.
fn plan(model: &Model) -> Result<Plan, Refusal> {
    crate::unwind::guarded_sync(|| {
        tract_onnx::onnx()
            .model_for_proto_model(model.proto())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
    })
    .map_err(|panic| Refusal::Panicked { message: format!("tract, while building the plan: {}", panic.0) })?
    .map_err(|e| Refusal::Failed { message: format!("tract cannot run this model: {e:#}") })
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
        let plans = match plan(model) {
            Ok(plan) => Plans::Symbolic(plan),
            // The run's inputs fix every dim: plan for those.
            Err(Refusal::Failed { message }) if model.has_free_dims() => {
                Plans::PerShape { model: Box::new(model.clone()), symbolic_error: message, built: Mutex::default() }
            }
            // Every dim is fixed: a stored shape may contradict what the inputs imply.
            Err(Refusal::Failed { message }) => {
                let shapes: Vec<Vec<usize>> = model.inputs().iter().map(fixed_shape).collect();
                let repaired = model.for_shapes(&shapes.iter().map(Vec::as_slice).collect::<Vec<_>>());
                Plans::Symbolic(repaired.ok().and_then(|m| plan(&m).ok()).ok_or(Refusal::Failed { message })?)
            }
            Err(refusal) => return Err(refusal),
        };
        let input_names = model.inputs().iter().map(|i| i.name.clone()).collect();
        Ok(CpuEngine { plans, input_names, index_checks: index_checks(model) })
    }

    /// The plan for inputs of these shapes.
    fn plan_for(&self, inputs: &[Tensor]) -> Result<Plan> {
        let (model, symbolic_error, built) = match &self.plans {
            Plans::Symbolic(plan) => return Ok(plan.clone()),
            Plans::PerShape { model, symbolic_error, built } => (model, symbolic_error, built),
        };
        let signature: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        let mut built = built.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = built.iter().position(|(s, _)| *s == signature) {
            let hit = built.remove(at);
            let plan = hit.1.clone();
            built.push(hit);
            return Ok(plan);
        }
        let shapes: Vec<&[usize]> = signature.iter().map(Vec::as_slice).collect();
        let refused = |refusal: Refusal| Error::Engine {
            engine: Engine::Cpu,
            message: format!("{refusal} for inputs of shapes {signature:?} (and for any shape: {symbolic_error})"),
        };
        let concrete = model.for_shapes(&shapes)?;
        let plan = plan(&concrete).map_err(refused)?;
        if built.len() >= PLANS_PER_SESSION {
            built.remove(0);
        }
        built.push((signature, plan.clone()));
        Ok(plan)
    }

    pub(crate) fn run_now(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        for check in &self.index_checks {
            if let Some(tensor) = inputs.get(check.input) {
                check_indices(check, &self.input_names[check.input], tensor)?;
            }
        }
        let plan = self.plan_for(&inputs)?;
        let inputs: TVec<TValue> = inputs.into_iter().map(to_tract).collect::<Result<_>>()?;
        let engine_error = |message: String| Error::Engine { engine: Engine::Cpu, message };
        let outputs = crate::unwind::guarded_sync(|| plan.run(inputs))
            .map_err(|panic| engine_error(format!("tract panicked: {}", panic.0)))?
            .map_err(|e| engine_error(format!("{e:#}")))?;
        outputs.into_iter().map(|t| from_tract(&t)).collect()
    }
}

/// An input's declared shape when every dim is fixed (else empty: not used then).
fn fixed_shape(info: &crate::model::ValueInfo) -> Vec<usize> {
    let dims = info.shape.iter().flatten();
    dims.map(|d| if let Dim::Fixed(v) = d { usize::try_from(*v).unwrap_or(usize::MAX) } else { 0 }).collect()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fixture(name: &str) -> Model {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/models").join(name).join("model.onnx");
        Model::from_bytes(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn the_fixtures_cannot_be_planned_from_their_stored_shapes() {
        for name in ["unet_free_dims", "unet_stale_shapes"] {
            assert!(plan(&fixture(name)).is_err(), "tract plans {name} as stored: the fixture tests nothing");
        }
    }

    #[test]
    fn plans_are_built_per_input_signature_and_the_last_few_kept() {
        let engine = CpuEngine::new(&fixture("unet_free_dims")).unwrap();
        let Plans::PerShape { built, .. } = &engine.plans else { panic!("a symbolic plan") };
        let run = |h: usize, w: usize| {
            let x = Tensor::new(&[1, 3, h, w], vec![0.5f32; 3 * h * w]).unwrap();
            let y = engine.run_now(vec![x]).unwrap();
            assert_eq!(y[0].shape(), [1, 2, h, w]);
        };
        let signatures = || built.lock().unwrap().iter().map(|(s, _)| s[0][2..].to_vec()).collect::<Vec<_>>();
        run(16, 16);
        run(32, 24);
        run(16, 16);
        assert_eq!(signatures(), [[32, 24], [16, 16]], "a hit moves to the back, nothing rebuilt");
        for (h, w) in [(8, 8), (24, 24), (8, 16)] {
            run(h, w);
        }
        assert_eq!(signatures(), [[16, 16], [8, 8], [24, 24], [8, 16]], "the least recently used went");
    }
}
