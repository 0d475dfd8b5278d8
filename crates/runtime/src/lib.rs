//! The Sextant core runtime: load an ONNX model, run it on the best engine that is proven right for it.
//!
//! Engines sit behind one [`Session`]: tract on the CPU, always available; our GPU engine (crate
//! `gpu`: tract's typed graph compiled to WGSL on wgpu 30; Vulkan/Metal/DX12 natively, WebGPU in
//! browsers; feature `gpu`). No GPU result leaves a session before the gate (adapter, the
//! engine's op table, a probe run compared with the CPU engine) has passed. A model the gate
//! refuses runs on the CPU, and [`Session::report`] says why.
//!
//! This crate does no IO: no files, sockets, environment, threads or clocks. It takes bytes and tensors
//! and returns tensors, so it builds for `wasm32-unknown-unknown` and `wasm32-wasip2` as well as
//! natively. Callers measure time and read files.

mod backend;
mod compare;
mod cpu;
mod error;
mod formats;
#[cfg(feature = "gpu")]
mod gate;
#[cfg(feature = "gpu")]
mod gpu;
mod inputs;
mod model;
mod session;
mod tensor;
mod tensor_proto;
mod unwind;

pub use backend::{Engine, EngineReport, Refusal};
pub use compare::{Comparison, Tolerance, compare};
pub use error::Error;
pub use formats::{npy, onnx_pb};
pub use inputs::{free_dims_of, synthetic_inputs};
pub use model::{Dim, Model, Opset, ValueInfo};
pub use session::{AdapterHint, BackendChoice, Session, SessionOptions};
pub use tensor::{DType, Element, Tensor, TensorData};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
