//! The edge host: models loaded once at start, served over HTTP with the Open Inference Protocol
//! (KServe v2 REST), inference on a bounded worker pool with its own timeout and queue limit.
//!
//! Every inference is recorded (predictions, feature counts against the reference profile,
//! errors) and shipped to the collector through an on-disk spool. This is the host's first slice:
//! models are served directly; sandboxed pipeline modules (wasmtime, `wasi:nn`, `wasi:http`) and
//! hot reload build on the registry, the pool and the recording here. The crate is a library; `sextant edge` is its binary edge. It never
//! lets a bad request take down the host: every refusal is `{"error": ..}` with a 4xx or 5xx.

mod config;
mod oip;
mod pool;
mod recording;
mod registry;
mod server;

pub use config::{CollectorConfig, Config, ConfigError, Limits, ModelConfig};
pub use pool::{Pool, PoolError};
pub use registry::{LoadError, Registry, Served};
pub use server::{router, serve};
