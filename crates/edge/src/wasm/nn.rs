//! `wasi:nn` for guests, implemented with the core runtime. Graphs are the host's configured
//! models, looked up by name (`load-by-name`) among those the module is granted; loading graph
//! bytes from a guest is refused. `compute` runs on the host's worker pool, with its timeout and
//! queue limit, and is recorded like an OIP inference: the prediction ids reach the HTTP answer.
//!
//! Tensors live in the host between calls, so the bytes a guest may park there are capped (at its
//! memory cap): a guest cannot grow the host's memory by making tensors.

use std::sync::{Arc, Mutex};

use runtime::{Tensor, TensorData};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::pool::{Pool, PoolError};
use crate::registry::{Registry, Served};

wasmtime::component::bindgen!({
    path: "wit/wasi-nn.wit",
    world: "ml",
    with: {
        "wasi:nn/graph.graph": Graph,
        "wasi:nn/tensor.tensor": HostTensor,
        "wasi:nn/inference.graph-execution-context": ExecutionContext,
        "wasi:nn/errors.error": NnError,
    },
    imports: {
        "wasi:nn/inference.[method]graph-execution-context.compute": async | trappable,
        default: trappable,
    },
    require_store_data_send: true,
});

use wasi::nn::errors::ErrorCode;
use wasi::nn::graph::{ExecutionTarget, GraphBuilder, GraphEncoding};
use wasi::nn::inference::NamedTensor;
use wasi::nn::tensor::{TensorData as Bytes, TensorDimensions, TensorType};

/// A loaded graph: the model version current when the guest loaded it.
#[derive(Debug)]
pub struct Graph(Arc<Served>);

#[derive(Debug)]
pub struct ExecutionContext(Arc<Served>);

#[derive(Debug)]
pub struct HostTensor {
    dimensions: Vec<u32>,
    ty: TensorType,
    data: Vec<u8>,
}

#[derive(Debug)]
pub struct NnError {
    code: ErrorCode,
    message: String,
}

/// What a store's `wasi:nn` needs: the host's models and pool, and the module's grants.
#[derive(Debug)]
pub(crate) struct NnCtx {
    pub registry: Arc<Registry>,
    pub pool: Arc<Pool>,
    /// The models this module may load; `None`: all.
    pub graphs: Option<Arc<[String]>>,
    /// Bytes held in tensors now, and the most allowed.
    pub held: usize,
    pub cap: usize,
    /// The predictions this request's inferences recorded, for the answer's header.
    pub prediction_ids: Arc<Mutex<Vec<String>>>,
}

pub(crate) struct NnView<'a> {
    pub ctx: &'a mut NnCtx,
    pub table: &'a mut ResourceTable,
}

struct Nn;

impl HasData for Nn {
    type Data<'a> = NnView<'a>;
}

pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> NnView<'_>,
) -> wasmtime::Result<()> {
    Ml::add_to_linker::<T, Nn>(linker, view)
}

type Answer<T> = wasmtime::Result<Result<T, Resource<NnError>>>;

impl NnView<'_> {
    fn fail<T>(&mut self, code: ErrorCode, message: impl Into<String>) -> Answer<T> {
        let error = self.table.push(NnError { code, message: message.into() })?;
        Ok(Err(error))
    }
}

impl wasi::nn::graph::Host for NnView<'_> {
    fn load(&mut self, _: Vec<GraphBuilder>, _: GraphEncoding, _: ExecutionTarget) -> Answer<Resource<Graph>> {
        self.fail(
            ErrorCode::Security,
            "this host does not load graphs from guests; it serves the models of its configuration: use load-by-name",
        )
    }

    fn load_by_name(&mut self, name: String) -> Answer<Resource<Graph>> {
        let granted = self.ctx.graphs.as_ref().is_none_or(|g| g.contains(&name));
        match self.ctx.registry.get(&name, None) {
            Some(served) if granted => Ok(Ok(self.table.push(Graph(served))?)),
            Some(_) => self.fail(ErrorCode::Security, format!("this module is not granted the graph {name:?}")),
            None => {
                let known: Vec<String> = self
                    .ctx
                    .registry
                    .all()
                    .iter()
                    .map(|s| s.name.clone())
                    .filter(|n| self.ctx.graphs.as_ref().is_none_or(|g| g.contains(n)))
                    .collect();
                self.fail(ErrorCode::NotFound, format!("no graph {name:?}; this module may load {known:?}"))
            }
        }
    }
}

impl wasi::nn::graph::HostGraph for NnView<'_> {
    fn init_execution_context(&mut self, graph: Resource<Graph>) -> Answer<Resource<ExecutionContext>> {
        let served = self.table.get(&graph)?.0.clone();
        Ok(Ok(self.table.push(ExecutionContext(served))?))
    }

    fn drop(&mut self, graph: Resource<Graph>) -> wasmtime::Result<()> {
        self.table.delete(graph)?;
        Ok(())
    }
}

impl wasi::nn::inference::HostGraphExecutionContext for NnView<'_> {
    async fn compute(
        &mut self,
        context: Resource<ExecutionContext>,
        inputs: Vec<NamedTensor>,
    ) -> Answer<Vec<NamedTensor>> {
        let served = self.table.get(&context)?.0.clone();
        let mut tensors = Vec::with_capacity(inputs.len());
        for (name, tensor) in inputs {
            let tensor = self.table.delete(tensor)?;
            self.ctx.held = self.ctx.held.saturating_sub(tensor.data.len());
            tensors.push((name, tensor));
        }
        let inputs = match tensors.into_iter().map(|(name, t)| to_runtime(&name, t).map(|t| (name, t))).collect() {
            Ok(inputs) => inputs,
            Err(message) => return self.fail(ErrorCode::InvalidArgument, message),
        };
        let done = match served.infer(&self.ctx.pool, inputs).await {
            Ok(done) => done,
            Err(e) => {
                let code = match &e {
                    PoolError::Timeout(_) => ErrorCode::Timeout,
                    e if e.is_bad_input() => ErrorCode::InvalidArgument,
                    _ => ErrorCode::RuntimeError,
                };
                return self.fail(code, format!("model {:?}: {e}", served.name));
            }
        };
        if let (Some(ids), Ok(mut all)) = (done.prediction_ids, self.ctx.prediction_ids.lock()) {
            all.extend(ids);
        }
        let mut outputs = Vec::with_capacity(done.outputs.len());
        for (name, tensor) in done.outputs {
            let tensor = from_runtime(tensor);
            // Outputs count against the cap too: they stay in the host until the guest drops them.
            self.ctx.held += tensor.data.len();
            outputs.push((name, self.table.push(tensor)?));
        }
        Ok(Ok(outputs))
    }

    fn drop(&mut self, context: Resource<ExecutionContext>) -> wasmtime::Result<()> {
        self.table.delete(context)?;
        Ok(())
    }
}

impl wasi::nn::tensor::HostTensor for NnView<'_> {
    fn new(
        &mut self,
        dimensions: TensorDimensions,
        ty: TensorType,
        data: Bytes,
    ) -> wasmtime::Result<Resource<HostTensor>> {
        let held = self.ctx.held.saturating_add(data.len());
        if held > self.ctx.cap {
            wasmtime::bail!(
                "the module holds {held} bytes in wasi:nn tensors, over its cap of {} (its memory cap)",
                self.ctx.cap
            );
        }
        self.ctx.held = held;
        Ok(self.table.push(HostTensor { dimensions, ty, data })?)
    }

    fn dimensions(&mut self, tensor: Resource<HostTensor>) -> wasmtime::Result<TensorDimensions> {
        Ok(self.table.get(&tensor)?.dimensions.clone())
    }

    fn ty(&mut self, tensor: Resource<HostTensor>) -> wasmtime::Result<TensorType> {
        Ok(self.table.get(&tensor)?.ty)
    }

    fn data(&mut self, tensor: Resource<HostTensor>) -> wasmtime::Result<Bytes> {
        Ok(self.table.get(&tensor)?.data.clone())
    }

    fn drop(&mut self, tensor: Resource<HostTensor>) -> wasmtime::Result<()> {
        let tensor = self.table.delete(tensor)?;
        self.ctx.held = self.ctx.held.saturating_sub(tensor.data.len());
        Ok(())
    }
}

impl wasi::nn::errors::HostError for NnView<'_> {
    fn code(&mut self, error: Resource<NnError>) -> wasmtime::Result<ErrorCode> {
        Ok(self.table.get(&error)?.code)
    }

    fn data(&mut self, error: Resource<NnError>) -> wasmtime::Result<String> {
        Ok(self.table.get(&error)?.message.clone())
    }

    fn drop(&mut self, error: Resource<NnError>) -> wasmtime::Result<()> {
        self.table.delete(error)?;
        Ok(())
    }
}

impl wasi::nn::errors::Host for NnView<'_> {}
impl wasi::nn::tensor::Host for NnView<'_> {}
impl wasi::nn::inference::Host for NnView<'_> {}

/// A guest's tensor as the runtime takes it; the message names the input and what is wrong.
fn to_runtime(name: &str, tensor: HostTensor) -> Result<Tensor, String> {
    let shape: Vec<usize> = tensor.dimensions.iter().map(|&d| d as usize).collect();
    let size = match tensor.ty {
        TensorType::Fp32 | TensorType::I32 => 4,
        TensorType::Fp64 | TensorType::I64 => 8,
        TensorType::U8 => 1,
        other => {
            return Err(format!(
                "input {name:?}: tensor type {other:?} is not supported here (FP32, FP64, I64, I32, U8 are)"
            ));
        }
    };
    if !tensor.data.len().is_multiple_of(size) {
        return Err(format!(
            "input {name:?}: {} bytes is not a whole number of {size}-byte {:?} elements",
            tensor.data.len(),
            tensor.ty
        ));
    }
    let chunks = tensor.data.chunks_exact(size);
    let data = match tensor.ty {
        TensorType::Fp32 => TensorData::F32(chunks.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        TensorType::I32 => TensorData::I32(chunks.map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        TensorType::Fp64 => TensorData::F64(chunks.map(|c| f64::from_le_bytes(eight(c))).collect()),
        TensorType::I64 => TensorData::I64(chunks.map(|c| i64::from_le_bytes(eight(c))).collect()),
        _ => TensorData::U8(tensor.data),
    };
    Tensor::from_data(&shape, data).map_err(|e| format!("input {name:?}: {e}"))
}

fn eight(c: &[u8]) -> [u8; 8] {
    [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]
}

/// A runtime output as a `wasi:nn` tensor: booleans become U8 and I8 becomes I32 (the interface
/// has neither type).
fn from_runtime(tensor: Tensor) -> HostTensor {
    let dimensions = tensor.shape().iter().map(|&d| u32::try_from(d).unwrap_or(u32::MAX)).collect();
    let (ty, data) = match tensor.into_data() {
        TensorData::F32(v) => (TensorType::Fp32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::F64(v) => (TensorType::Fp64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::I64(v) => (TensorType::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::I32(v) => (TensorType::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::U8(v) => (TensorType::U8, v),
        TensorData::I8(v) => (TensorType::I32, v.iter().flat_map(|&x| i32::from(x).to_le_bytes()).collect()),
        TensorData::Bool(v) => (TensorType::U8, v.iter().map(|&x| u8::from(x)).collect()),
    };
    HostTensor { dimensions, ty, data }
}
