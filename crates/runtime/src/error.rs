use crate::backend::{Engine, Refusal};
use crate::tensor::DType;

/// Everything that can go wrong in the runtime. Each variant names what was expected and what came.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("could not decode {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: prost::DecodeError,
    },
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("unknown dim `{name}` in overrides; the model's symbolic dims are {known:?}")]
    UnknownDim { name: String, known: Vec<String> },
    #[error("missing input `{name}`; the model expects {expected:?}")]
    MissingInput { name: String, expected: Vec<String> },
    #[error("unexpected input `{name}`; the model expects {expected:?}")]
    UnexpectedInput { name: String, expected: Vec<String> },
    #[error("input `{name}`: expected dtype {expected}, got {actual}")]
    InputDType { name: String, expected: DType, actual: DType },
    #[error("input `{name}`: expected rank {expected} (shape {shape}), got shape {actual:?}")]
    InputRank { name: String, expected: usize, shape: String, actual: Vec<usize> },
    #[error("input `{name}`: expected dim {axis} to be {expected} (shape {shape}), got shape {actual:?}")]
    InputDim { name: String, axis: usize, expected: String, shape: String, actual: Vec<usize> },
    #[error("input `{name}`: {detail}")]
    InputValue { name: String, detail: String },
    #[error("tensor shape {shape:?} holds {expected} elements, but {actual} values were given")]
    ShapeMismatch { shape: Vec<usize>, expected: usize, actual: usize },
    #[error("tensor shape {shape:?} is larger than this platform can address, and {actual} values were given")]
    ShapeTooLarge { shape: Vec<usize>, actual: usize },
    #[error("unsupported element type {0}")]
    UnsupportedDType(String),
    #[error("{engine} engine refused this model: {reason}")]
    EngineRefused { engine: Engine, reason: Refusal },
    #[error("{engine} engine failed: {message}")]
    Engine { engine: Engine, message: String },
    #[error("{format} tensor: {detail}")]
    TensorFormat { format: &'static str, detail: String },
}
