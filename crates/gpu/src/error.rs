//! Why the GPU engine will not compile or run a graph. Each names the node, tensor or limit.

/// A refusal or failure of the GPU engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no GPU adapter was found")]
    NoAdapter,
    #[error("the GPU device could not be opened: {0}")]
    Device(String),
    /// No translator takes this op, or this variant of it.
    #[error("node `{node}` ({op}): {detail}")]
    Unsupported { node: String, op: String, detail: String },
    #[error("tensor `{tensor}` is {dtype}; the GPU engine runs f32, i64, i32 and bool tensors")]
    DType { tensor: String, dtype: String },
    /// A constant the device cannot hold as it is (an i64 outside i32).
    #[error("tensor `{tensor}`: {detail}")]
    Value { tensor: String, detail: String },
    #[error("tensor `{tensor}` has shape {shape}; the GPU engine needs every dim fixed")]
    FreeDim { tensor: String, shape: String },
    #[error("tensor `{tensor}` needs {bytes} bytes, over the adapter's storage binding limit of {limit}")]
    TooLarge { tensor: String, bytes: u64, limit: u64 },
    /// The adapter rejected a kernel (shader compilation or pipeline validation).
    #[error("the adapter rejected the kernel for node `{node}`: {message}")]
    Rejected { node: String, message: String },
    #[error("input {index}: expected {expected}, got {actual}")]
    Input { index: usize, expected: String, actual: String },
    /// A kernel met a value it cannot compute right: a `Gather` index past its axis (ONNX leaves
    /// the result undefined), an integer result past i32 (the device's integers are 32-bit), a
    /// division by zero. The run gives no result.
    #[error("node `{node}`: an index out of range, or an integer past i32 or divided by zero")]
    Fault { node: String },
    #[error("the GPU run failed: {0}")]
    Run(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
