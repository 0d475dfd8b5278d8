//! The edge host: models loaded once and served over HTTP with the Open Inference Protocol
//! (KServe v2 REST), and sandboxed pipeline modules (wasm components exporting
//! `wasi:http/incoming-handler`) mounted at routes, calling the same models through `wasi:nn`.
//! Inference runs on a bounded worker pool with its own timeout and queue limit; module and model
//! files are reloaded in place when they change.
//!
//! Every inference is recorded (predictions, feature counts against the reference profile,
//! errors) and shipped to the collector through an on-disk spool. The crate is a library;
//! `sextant edge` is its binary. It never lets a bad request or a misbehaving module take down the
//! host: every refusal is `{"error": ..}` with a 4xx or 5xx.

mod auth;
mod config;
mod oip;
mod pool;
mod recording;
mod refusal;
mod registry;
mod reload;
mod server;
mod wasm;

pub use auth::{AuthConfig, digest, generate_token};
pub use config::{CollectorConfig, Config, ConfigError, Limits, ModelConfig, ModuleConfig};
pub use pool::{Pool, PoolError};
pub use registry::{LoadError, Registry, Served, content_hash};
pub use server::{Host, serve};
pub use wasm::{ModuleError, PREDICTION_IDS_HEADER};
