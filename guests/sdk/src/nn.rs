//! Models through `wasi:nn`: load a graph the host serves by name, run it on tensors.
//!
//! ```ignore
//! let graph = nn::Graph::load("digits")?;
//! let outputs = graph.run(&[("pixels", nn::Tensor::f32(&[1, 64], &pixels))])?;
//! let probabilities = nn::output(&outputs, "probabilities")?.to_f32()?;
//! ```

mod bindings {
    wit_bindgen::generate!({
        path: "../../crates/edge/wit",
        world: "wasi:nn/ml",
    });
}

use bindings::wasi::nn::{errors, graph, tensor};

pub use errors::ErrorCode;
pub use tensor::TensorType;

/// A `wasi:nn` error: its code and the host's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NnError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<errors::Error> for NnError {
    fn from(e: errors::Error) -> NnError {
        NnError { code: e.code(), message: e.data() }
    }
}

impl std::fmt::Display for NnError {
    /// `not-found: no graph …`: the code as the interface names it, then the host's message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = match self.code {
            ErrorCode::InvalidArgument => "invalid-argument",
            ErrorCode::InvalidEncoding => "invalid-encoding",
            ErrorCode::Timeout => "timeout",
            ErrorCode::RuntimeError => "runtime-error",
            ErrorCode::UnsupportedOperation => "unsupported-operation",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::NotFound => "not-found",
            ErrorCode::Security => "security",
            ErrorCode::Unknown => "unknown",
        };
        write!(f, "{code}: {}", self.message)
    }
}

impl std::error::Error for NnError {}

/// A tensor's shape, element type and little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub dims: Vec<u32>,
    pub ty: TensorType,
    pub data: Vec<u8>,
}

impl Tensor {
    pub fn f32(dims: &[u32], values: &[f32]) -> Tensor {
        Tensor {
            dims: dims.to_vec(),
            ty: TensorType::Fp32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn i64(dims: &[u32], values: &[i64]) -> Tensor {
        Tensor { dims: dims.to_vec(), ty: TensorType::I64, data: values.iter().flat_map(|v| v.to_le_bytes()).collect() }
    }

    /// The values as f32 (FP32 only); an error naming the type otherwise.
    pub fn to_f32(&self) -> Result<Vec<f32>, NnError> {
        match self.ty {
            TensorType::Fp32 => {
                Ok(self.data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            other => Err(self.wrong_type(other, "FP32")),
        }
    }

    /// The values as i64 (I64 only).
    pub fn to_i64(&self) -> Result<Vec<i64>, NnError> {
        match self.ty {
            TensorType::I64 => Ok(self
                .data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect()),
            other => Err(self.wrong_type(other, "I64")),
        }
    }

    fn wrong_type(&self, actual: TensorType, expected: &str) -> NnError {
        NnError { code: ErrorCode::InvalidArgument, message: format!("the tensor is {actual:?}, not {expected}") }
    }
}

/// A graph the host serves.
#[derive(Debug)]
pub struct Graph(graph::Graph);

impl Graph {
    /// The host's model `name` (its configuration lists what this module may load).
    pub fn load(name: &str) -> Result<Graph, NnError> {
        Ok(Graph(graph::load_by_name(name)?))
    }

    /// Runs the graph on named inputs; the outputs, named.
    pub fn run(&self, inputs: &[(&str, Tensor)]) -> Result<Vec<(String, Tensor)>, NnError> {
        let context = self.0.init_execution_context()?;
        let inputs =
            inputs.iter().map(|(name, t)| ((*name).to_owned(), tensor::Tensor::new(&t.dims, t.ty, &t.data))).collect();
        let outputs = context.compute(inputs)?;
        Ok(outputs
            .into_iter()
            .map(|(name, t)| (name, Tensor { dims: t.dimensions(), ty: t.ty(), data: t.data() }))
            .collect())
    }
}

/// The output `name`, or an error listing the outputs there are.
pub fn output<'a>(outputs: &'a [(String, Tensor)], name: &str) -> Result<&'a Tensor, NnError> {
    outputs.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| NnError {
        code: ErrorCode::RuntimeError,
        message: format!(
            "the graph has no output {name:?}; it has {:?}",
            outputs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
        ),
    })
}
