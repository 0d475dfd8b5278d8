//! The engine boundary: the trait each engine implements, and what a session reports about its choice.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::compare::Comparison;
use crate::{Result, Tensor};

/// An inference engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// tract, on the CPU: always available.
    Cpu,
    /// Our GPU engine (crate `gpu`, wgpu 30): only behind the gate.
    Gpu,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Cpu => "cpu",
            Engine::Gpu => "gpu",
        })
    }
}

/// Why an engine will not run a model. Each names the node, tensor or number that decided it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The runtime was built without this GPU engine.
    NotBuilt,
    NoAdapter,
    /// `Auto` skips software adapters (lavapipe, SwiftShader): they are slower than the CPU engine.
    /// An explicit `Gpu` choice still uses them.
    SoftwareAdapter {
        adapter: String,
    },
    Device {
        message: String,
    },
    /// The GPU engine needs every shape fixed; this input has a free dim with no override.
    FreeDim {
        input: String,
        dim: String,
    },
    UnsupportedDType {
        tensor: String,
        dtype: String,
    },
    UnsupportedOp {
        node: String,
        op: String,
        detail: String,
    },
    ShapeInference {
        message: String,
    },
    TooLarge {
        tensor: String,
        bytes: u64,
        limit: u64,
    },
    /// The probe run could not be checked because the CPU engine cannot run the model.
    NoReference {
        message: String,
    },
    /// The probe run disagreed with the CPU engine.
    ProbeMismatch {
        output: String,
        detail: String,
    },
    /// The engine returned an error while compiling or running.
    Failed {
        message: String,
    },
    /// The engine panicked (a bug in the gate, caught natively).
    Panicked {
        message: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotBuilt => f.write_str("this build does not have the GPU engine (cargo feature `gpu`)"),
            Refusal::NoAdapter => f.write_str("no GPU adapter was found"),
            Refusal::SoftwareAdapter { adapter } => {
                write!(f, "the only adapter, {adapter}, is a software rasteriser, slower than the CPU engine")
            }
            Refusal::Device { message } => write!(f, "the GPU device could not be opened: {message}"),
            Refusal::FreeDim { input, dim } => {
                write!(
                    f,
                    "input `{input}` has free dim `{dim}`; the GPU engine needs every dim fixed (give `{dim}` a value in the session's dims)"
                )
            }
            Refusal::UnsupportedDType { tensor, dtype } => {
                write!(f, "tensor `{tensor}` is {dtype}; the GPU engine runs f32, i64, i32 and bool tensors")
            }
            Refusal::UnsupportedOp { node, op, detail } => write!(f, "node `{node}` ({op}): {detail}"),
            Refusal::ShapeInference { message } => write!(f, "shape inference failed: {message}"),
            Refusal::TooLarge { tensor, bytes, limit } => {
                write!(f, "tensor `{tensor}` needs {bytes} bytes, over the GPU buffer limit of {limit}")
            }
            Refusal::NoReference { message } => {
                write!(f, "the GPU result cannot be proven: the CPU engine cannot run this model ({message})")
            }
            Refusal::ProbeMismatch { output, detail } => {
                write!(f, "probe run disagrees with the CPU engine on output `{output}`: {detail}")
            }
            Refusal::Failed { message } => f.write_str(message),
            Refusal::Panicked { message } => write!(f, "the engine panicked: {message}"),
        }
    }
}

/// Which engine a session runs on, and why the others were refused.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EngineReport {
    pub engine: Engine,
    /// The GPU adapter, when one was found (e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan)`).
    pub adapter: Option<String>,
    /// Engines that were considered and refused, with the reason.
    pub refused: Vec<(Engine, Refusal)>,
    /// The GPU probe run compared with the CPU engine, when it ran.
    pub probe: Option<Vec<(String, Comparison)>>,
}

/// A boxed future that is not required to be `Send`: WebGPU futures in browsers are not.
pub(crate) type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What each engine implements. Callers never see it: they hold a [`crate::Session`].
pub(crate) trait Backend: MaybeSendSync {
    /// Runs the model on inputs already checked against the signature, in signature order; returns
    /// the outputs in signature order.
    fn run<'a>(&'a self, inputs: Vec<Tensor>) -> LocalBoxFuture<'a, Result<Vec<Tensor>>>;
}

// Natively sessions cross threads (the edge host serves from a pool); in wasm32 nothing is `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + Sync> MaybeSendSync for T {}
#[cfg(target_arch = "wasm32")]
pub(crate) trait MaybeSendSync {}
#[cfg(target_arch = "wasm32")]
impl<T> MaybeSendSync for T {}
