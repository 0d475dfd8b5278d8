//! The GPU engine (wonnx on wgpu) and the gate in front of it.
//!
//! wonnx 0.5.1 is measured to return silently wrong numbers on some graphs and to panic on others,
//! so nothing reaches it unchecked. The gate, in order:
//! 1. [`adapter`]: find an adapter and open a device the way wonnx will (no panic when there is none);
//!    `Auto` passes over software adapters, which are slower than the CPU engine;
//! 2. [`prepare`]: fix shapes (wonnx needs every intermediate shape), infer them with tract, and
//!    rewrite what wonnx lacks into mathematically identical forms;
//! 3. [`rules`]: an allowlist of ops *and attribute variants* that this project's conformance runs
//!    prove correct;
//! 4. a probe run on a deterministic input, compared with the CPU engine (on by default).
//!
//! **Invariant:** a session runs on the GPU only after every step passed; otherwise the caller gets a
//! [`Refusal`] naming the step and the node, tensor or error that failed it.

mod adapter;
mod engine;
mod prepare;
mod rules;

use crate::backend::Refusal;
use crate::compare::{Comparison, compare};
use crate::cpu::CpuEngine;
use crate::model::Model;
use crate::session::{BackendChoice, SessionOptions};
use crate::{Result, Tensor};

pub(crate) use engine::GpuEngine;

/// A GPU engine that passed the gate.
pub(crate) struct Gated {
    pub engine: GpuEngine,
    pub adapter: String,
    pub probe: Option<Vec<(String, Comparison)>>,
}

/// Runs the gate. A refusal carries the adapter name when one was found.
pub(crate) async fn gate(
    model: &Model,
    reference: Result<&CpuEngine, &Refusal>,
    options: &SessionOptions,
) -> std::result::Result<Gated, (Refusal, Option<String>)> {
    let probed = adapter::probe().await.map_err(|r| (r, None))?;
    let (adapter, software) = match &options.adapter_hint {
        Some(hint) if probed.anonymous => (hint.description.clone(), hint.software || probed.software),
        _ => (probed.description, probed.software),
    };
    let refuse = |r: Refusal| (r, Some(adapter.clone()));
    if software && options.backend == BackendChoice::Auto {
        return Err(refuse(Refusal::SoftwareAdapter { adapter: adapter.clone() }));
    }
    let prepared = prepare::prepare(model).map_err(refuse)?;
    let engine = GpuEngine::new(prepared).await.map_err(refuse)?;
    let probe = if options.gpu_probe {
        let reference = reference.map_err(|r| refuse(Refusal::NoReference { message: r.to_string() }))?;
        Some(probe(model, reference, &engine, options).await.map_err(refuse)?)
    } else {
        None
    };
    Ok(Gated { engine, adapter, probe })
}

/// Runs both engines on the same deterministic input; any output outside tolerance refuses the GPU.
async fn probe(
    model: &Model,
    reference: &CpuEngine,
    engine: &GpuEngine,
    options: &SessionOptions,
) -> std::result::Result<Vec<(String, Comparison)>, Refusal> {
    let inputs = probe_inputs(model)?;
    let expected = reference.run_now(inputs.clone()).map_err(|e| Refusal::NoReference { message: e.to_string() })?;
    let actual = engine.run_guarded(inputs).await?;
    let mut comparisons = Vec::with_capacity(expected.len());
    for ((output, actual), expected) in model.outputs().iter().zip(&actual).zip(&expected) {
        let comparison = compare(actual, expected, options.probe_tolerance);
        if !comparison.passed() {
            return Err(Refusal::ProbeMismatch { output: output.name.clone(), detail: comparison.summary() });
        }
        comparisons.push((output.name.clone(), comparison));
    }
    Ok(comparisons)
}

/// The seed of the probe input: fixed, so a refusal reproduces.
const PROBE_SEED: u64 = 0x05EC_7A17;

/// Deterministic inputs in [-1, 1). [`prepare`] has checked they are f32 with fixed shapes.
fn probe_inputs(model: &Model) -> std::result::Result<Vec<Tensor>, Refusal> {
    let inputs = crate::synthetic_inputs(model.inputs(), &Default::default(), PROBE_SEED)
        .map_err(|e| Refusal::Failed { message: format!("probe input: {e}") })?;
    Ok(inputs.into_iter().map(|(_, tensor)| tensor).collect())
}
