//! The browser package: the runtime and the telemetry batcher behind a small, typed JS API
//! (`cargo xtask web` turns this crate into `pkg/`).
//!
//! ```js
//! import init, { Session } from "./pkg/sextant.js";
//! await init();
//! const session = await Session.create("/models/digits.onnx", { backend: "auto", telemetry: { collector, key } });
//! const { outputs, predictionId } = await session.run({ pixels: new Float32Array(64) });
//! await session.label(predictionId, "7");
//! ```
//!
//! This crate is a binding: it converts JS values to runtime and telemetry types and back, maps
//! errors to JS `Error`s with a stable `code`, and brings what the no-IO crates leave to their
//! callers: `fetch`, the Cache API, timers, `localStorage` and `navigator.sendBeacon`. Decisions
//! (which engine, what a run's telemetry is, when a batch is sealed or retried) belong to the
//! runtime and telemetry crates. It must never panic on what a page passes in: a panic in wasm
//! breaks the module until the page reloads.

mod error;
mod feeds;
mod js;
mod load;
mod options;
mod page_telemetry;
mod session;

pub use session::Session;

use wasm_bindgen::prelude::wasm_bindgen;

/// Runs when the module is instantiated: a panic (a bug) is logged with its message, not as
/// `unreachable executed`.
#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** A typed array of one of the element types the runtime carries. */
export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

/** An input: a typed array (dims taken from the model where they are fixed), or data with dims. */
export type Feed = TypedArray | number[] | { data: TypedArray | number[]; dims?: number[] };

export type DType = "f32" | "f64" | "i64" | "i32" | "u8" | "i8" | "bool";

/** A model input or output: dims are numbers, free dims' names, or null where unknown. */
export interface TensorInfo {
  name: string;
  dtype: DType | null;
  dims: (number | string | null)[] | null;
}

export interface Tensor {
  name: string;
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

export interface RunResult {
  /** Outputs by name, in the model's order. */
  outputs: Record<string, Tensor>;
  /** Id of the first row's prediction: pass it to `session.label`. */
  predictionId: string;
  /** One id per row of the batch. */
  predictionIds: string[];
  /** Time spent in the engine, in milliseconds. */
  latencyMs: number;
}

export interface TelemetryOptions {
  /** The collector's base URL, e.g. "https://collector.example.com". */
  collector: string;
  /** An ingest key. */
  key: string;
  /** Model name and version as the collector knows them (default: the model's metadata). */
  model?: string;
  version?: string;
  /** This app, as telemetry names its source (default: the page's host). */
  node?: string;
  /** The output whose rows are summarised (default: the last output). */
  output?: string;
  /** Class names, by index, for classifier outputs. */
  classes?: string[];
  /** The reference profile for feature summaries: `true` fetches it from the collector (default),
   *  `false` sends no feature summaries, or the profile itself. Raw inputs never leave the page. */
  profile?: boolean | object;
  /** Seal a batch at this many records (default 200) or at this age (default 5000 ms). */
  maxRecords?: number;
  maxAgeMs?: number;
  /** Keep unsent batches in localStorage across reloads and offline periods (default true). */
  persist?: boolean;
  /** Raw values kept per feature in each summary (default 0, at most 32): they let the collector
   *  tell a renamed field from a missing one and name new categories. Opt-in: they leave the page. */
  samples?: number;
}

export interface SessionOptions {
  /** "auto" (default): WebGPU when the model passes the gate on a hardware adapter, else the CPU. */
  backend?: "auto" | "webgpu" | "cpu";
  /** Values for free dims, by name (as onnxruntime-web's freeDimensionOverrides). */
  dims?: Record<string, number>;
  /** Called as the model downloads: bytes so far, and the total when the server says it. */
  onProgress?: (loaded: number, total: number | null) => void;
  /** Expected SHA-256 of the model (hex): checked after download, and the Cache API key. */
  sha256?: string;
  /** Keep the model in the Cache API ("sextant-models"), keyed by `sha256` if given, else the URL. */
  cache?: boolean;
  telemetry?: TelemetryOptions;
}

/** Which engine runs a session, and why any other was refused. */
export interface EngineReport {
  engine: "cpu" | "gpu";
  /** The GPU adapter, when one was found. */
  adapter: string | null;
  /** Engines considered and refused: [engine, { kind, …details }]. */
  refused: ["cpu" | "gpu", { kind: string; [detail: string]: unknown }][];
  /** The GPU probe run compared with the CPU engine, per output, when it ran. */
  probe: [string, { max_abs: number; max_rel: number; mismatched: number; total: number; structural: string | null }][] | null;
}

/** The page's telemetry counters. */
export interface TelemetryStats {
  records: number;
  batchesSealed: number;
  batchesDelivered: number;
  batchesRejected: number;
  batchesEvicted: number;
  retries: number;
  /** Sealed batches not yet acknowledged (kept in localStorage). */
  pendingBatches: number;
  openRecords: number;
  /** Records certainly lost, and records in batches given up on after an unacknowledged attempt. */
  dropped: number;
  unconfirmed: number;
}

/** Errors thrown by this package: `code` is stable, `message` names what was expected and what came. */
export interface SextantError extends Error {
  code:
    | "bad_argument" | "fetch_failed" | "integrity" | "invalid_model" | "unknown_dim"
    | "missing_input" | "unexpected_input" | "input_dtype" | "input_shape" | "input_value"
    | "unsupported_dtype" | "engine_refused" | "engine_failed" | "released" | "telemetry";
}
"#;
