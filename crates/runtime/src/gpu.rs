//! Our GPU engine (crate `gpu`: tract's typed graph compiled to WGSL kernels on wgpu 30) behind
//! the gate.

use tract_onnx::prelude::{Framework, InferenceModelExt, IntoTensor};

use crate::backend::{Backend, Engine, LocalBoxFuture, Refusal};
use crate::cpu::{from_tract, to_tract};
use crate::gate::{Candidate, Opened, Refused, check_adapter, check_inputs, panicked, run_proven};
use crate::model::Model;
use crate::session::SessionOptions;
use crate::unwind::{guarded, guarded_sync};
use crate::{Error, Result, Tensor};

pub(crate) struct GpuEngine {
    program: gpu::Program,
}

pub(crate) async fn open(model: &Model, options: &SessionOptions) -> Result<Opened<GpuEngine>, Refused> {
    let device = guarded(gpu::Gpu::open()).await.map_err(|p| (panicked(p), None))?.map_err(|e| (refusal(e), None))?;
    let adapter = check_adapter(&device.adapter().description, device.adapter().software, options)?;
    let refuse = |r: Refusal| (r, Some(adapter.clone()));
    check_inputs(model).map_err(refuse)?;
    // tract's front end: shapes and constant subgraphs folded, patterns recognised.
    let typed = guarded_sync(|| {
        let mut typed = tract_onnx::onnx()
            .model_for_proto_model(model.proto())
            .and_then(|m| m.into_typed())
            .and_then(|m| m.into_decluttered())
            .map_err(|e| format!("{e:#}"))?;
        gpu::prepare(&mut typed)?;
        Ok::<_, String>(typed)
    })
    .map_err(|p| refuse(Refusal::Panicked { message: format!("tract, while preparing the graph: {}", p.0) }))?
    .map_err(|message| refuse(Refusal::ShapeInference { message }))?;
    let program = guarded(gpu::compile(&device, &typed))
        .await
        .map_err(|p| refuse(panicked(p)))?
        .map_err(|e| refuse(refusal(e)))?;
    Ok(Opened { engine: GpuEngine { program }, adapter })
}

impl Candidate for GpuEngine {
    const ENGINE: Engine = Engine::Gpu;

    async fn run_inner(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let inputs: Vec<_> = inputs.into_iter().map(|t| to_tract(t).map(|v| v.into_tensor())).collect::<Result<_>>()?;
        let results = self.program.run(&inputs).await.map_err(|e| gpu_error(e.to_string()))?;
        results.iter().map(from_tract).collect()
    }
}

impl Backend for GpuEngine {
    fn run<'a>(&'a self, inputs: Vec<Tensor>) -> LocalBoxFuture<'a, Result<Vec<Tensor>>> {
        Box::pin(run_proven(self, inputs))
    }
}

/// The GPU engine's reasons, in the runtime's terms.
fn refusal(error: gpu::Error) -> Refusal {
    match error {
        gpu::Error::NoAdapter => Refusal::NoAdapter,
        gpu::Error::Device(message) => Refusal::Device { message },
        gpu::Error::Unsupported { node, op, detail } => Refusal::UnsupportedOp { node, op, detail },
        gpu::Error::DType { tensor, dtype } => Refusal::UnsupportedDType { tensor, dtype },
        gpu::Error::FreeDim { tensor, shape } => Refusal::FreeDim { input: tensor, dim: shape },
        gpu::Error::TooLarge { tensor, bytes, limit } => Refusal::TooLarge { tensor, bytes, limit },
        other => Refusal::Failed { message: other.to_string() },
    }
}

fn gpu_error(message: String) -> Error {
    Error::Engine { engine: Engine::Gpu, message }
}
