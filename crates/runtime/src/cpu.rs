//! The CPU engine: tract, with its optimized plan built once per session.

use std::sync::Arc;

use tract_onnx::prelude::{
    DatumType, Framework, InferenceModelExt, IntoRunnable, IntoTValue, TValue, TVec, TypedRunnableModel,
};

use crate::backend::{Backend, Engine, LocalBoxFuture, Refusal};
use crate::model::Model;
use crate::tensor::{Element, TensorData};
use crate::{Error, Result, Tensor};

#[derive(Debug)]
pub(crate) struct CpuEngine {
    plan: Arc<TypedRunnableModel>,
}

impl CpuEngine {
    pub(crate) fn new(model: &Model) -> Result<CpuEngine, Refusal> {
        let plan = tract_onnx::onnx()
            .model_for_proto_model(model.proto())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| Refusal::Failed { message: format!("tract cannot run this model: {e:#}") })?;
        Ok(CpuEngine { plan })
    }

    pub(crate) fn run_now(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let inputs: TVec<TValue> = inputs.into_iter().map(to_tract).collect::<Result<_>>()?;
        let outputs =
            self.plan.run(inputs).map_err(|e| Error::Engine { engine: Engine::Cpu, message: format!("{e:#}") })?;
        outputs.into_iter().map(|t| from_tract(&t)).collect()
    }
}

impl Backend for CpuEngine {
    fn run<'a>(&'a self, inputs: Vec<Tensor>) -> LocalBoxFuture<'a, Result<Vec<Tensor>>> {
        Box::pin(std::future::ready(self.run_now(inputs)))
    }
}

fn to_tract(tensor: Tensor) -> Result<TValue> {
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
