//! The wonnx session behind the gate.

use std::borrow::Cow;
use std::collections::HashMap;

use wonnx::utils::{InputTensor, OutputTensor};

use super::prepare::Prepared;
use crate::backend::{Backend, Engine, LocalBoxFuture, Refusal};
use crate::gate::{Candidate, panicked, run_proven};
use crate::unwind::guarded;
use crate::{Error, Result, Tensor, TensorData};

pub(crate) struct WonnxEngine {
    session: wonnx::Session,
    inputs: Vec<String>,
    /// Output names and the shapes shape inference fixed for them (wonnx returns flat buffers).
    outputs: Vec<(String, Vec<usize>)>,
}

impl WonnxEngine {
    pub(crate) async fn new(prepared: Prepared) -> Result<WonnxEngine, Refusal> {
        let session = guarded(wonnx::Session::from_bytes(&prepared.bytes))
            .await
            .map_err(panicked)?
            .map_err(|e| Refusal::Failed { message: format!("wonnx cannot compile this model: {e}") })?;
        Ok(WonnxEngine { session, inputs: prepared.inputs, outputs: prepared.outputs })
    }
}

impl Candidate for WonnxEngine {
    const ENGINE: Engine = Engine::Wonnx;

    async fn run_inner(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let mut feed = HashMap::with_capacity(inputs.len());
        for (name, tensor) in self.inputs.iter().zip(&inputs) {
            // The gate admits f32 inputs only.
            let TensorData::F32(values) = tensor.data() else {
                return Err(Error::UnsupportedDType(tensor.dtype().to_string()));
            };
            feed.insert(name.clone(), InputTensor::F32(Cow::Borrowed(values.as_slice())));
        }
        let mut results = self.session.run(&feed).await.map_err(|e| gpu_error(e.to_string()))?;
        self.outputs
            .iter()
            .map(|(name, shape)| {
                let values = match results.remove(name) {
                    Some(OutputTensor::F32(v)) => v,
                    Some(other) => return Err(gpu_error(format!("output `{name}` came back as {}", kind(&other)))),
                    None => return Err(gpu_error(format!("output `{name}` is missing from the results"))),
                };
                Tensor::new(shape, values).map_err(|e| gpu_error(format!("output `{name}`: {e}")))
            })
            .collect()
    }
}

impl Backend for WonnxEngine {
    fn run<'a>(&'a self, inputs: Vec<Tensor>) -> LocalBoxFuture<'a, Result<Vec<Tensor>>> {
        Box::pin(run_proven(self, inputs))
    }
}

fn gpu_error(message: String) -> Error {
    Error::Engine { engine: Engine::Wonnx, message }
}

fn kind(tensor: &OutputTensor) -> &'static str {
    match tensor {
        OutputTensor::F32(_) => "f32",
        OutputTensor::I32(_) => "i32",
        OutputTensor::I64(_) => "i64",
        OutputTensor::U8(_) => "u8",
    }
}
