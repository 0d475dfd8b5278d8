//! The gate in front of the GPU engine: nothing a GPU computes leaves a session unproven.
//!
//! In order:
//! 1. find an adapter and open a device without panicking when there is none; `Auto` passes over
//!    software adapters, which are slower than the CPU engine;
//! 2. compile the model through the engine's translator table ([`crate::gpu`]);
//! 3. a probe run on a deterministic input, compared with the CPU engine (on by default).
//!
//! **Invariant:** a session runs on a GPU only after every step passed; otherwise the caller gets
//! a [`Refusal`] naming the step and the node, tensor or error that failed it.

use crate::backend::{Backend, Engine, Refusal};
use crate::compare::{Comparison, compare};
use crate::cpu::CpuEngine;
use crate::model::{Dim, Model, ValueInfo};
use crate::session::{BackendChoice, SessionOptions};
use crate::tensor::DType;
use crate::unwind::{Panic, guarded};
use crate::{Error, Result, Tensor, TensorData};

/// A compiled GPU engine, before the probe.
///
/// `async fn`s, not boxed futures: callers instantiate them with a concrete engine, so a session's
/// future stays `Send` wherever the engine's is (the edge host spawns it on tokio).
pub(crate) trait Candidate: Backend {
    /// The engine, as its errors name it.
    const ENGINE: Engine;

    /// One run, unguarded.
    async fn run_inner(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>>;

    /// Runs, turning a panic or failure into a refusal: the engine is not trusted yet.
    async fn run_guarded(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, Refusal> {
        guarded(self.run_inner(inputs)).await.map_err(panicked)?.map_err(|e| Refusal::Failed { message: e.to_string() })
    }
}

/// A proven engine's run (its `Backend::run`). The guard stays: a panic on other data than the
/// probe's must not take the process down.
pub(crate) async fn run_proven<E: Candidate>(engine: &E, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
    guarded(engine.run_inner(inputs))
        .await
        .map_err(|Panic(message)| Error::Engine { engine: E::ENGINE, message: format!("panicked: {message}") })?
}

/// A panic caught while opening or proving an engine.
pub(crate) fn panicked(Panic(message): Panic) -> Refusal {
    Refusal::Panicked { message }
}

/// What an engine's `open` gives back: the engine and the adapter it runs on.
pub(crate) struct Opened<E> {
    pub engine: E,
    pub adapter: String,
}

/// A refusal, with the adapter's name when one was found.
pub(crate) type Refused = (Refusal, Option<String>);

/// A GPU engine that passed the gate.
pub(crate) struct Gated<E> {
    pub engine: E,
    pub adapter: String,
    pub probe: Option<Vec<(String, Comparison)>>,
}

/// Runs the probe on an opened engine.
pub(crate) async fn prove<E: Candidate>(
    model: &Model,
    opened: Opened<E>,
    reference: Result<&CpuEngine, &Refusal>,
    options: &SessionOptions,
) -> std::result::Result<Gated<E>, Refused> {
    let Opened { engine, adapter } = opened;
    let refuse = |r: Refusal| (r, Some(adapter.clone()));
    let probe = if options.gpu_probe {
        let reference = reference.map_err(|r| refuse(Refusal::NoReference { message: r.to_string() }))?;
        Some(probe(model, reference, &engine, options).await.map_err(refuse)?)
    } else {
        None
    };
    Ok(Gated { engine, adapter, probe })
}

/// The adapter's description, completed by the caller's hint, once `Auto`'s rule has passed it:
/// `Auto` passes over software adapters; an explicit choice takes them.
pub(crate) fn check_adapter(
    description: &str,
    software: bool,
    options: &SessionOptions,
) -> std::result::Result<String, Refused> {
    let hint = options.adapter_hint.as_ref();
    let software = software || hint.is_some_and(|h| h.software);
    let adapter = match (description.is_empty(), hint) {
        (false, _) => description.to_owned(),
        (true, Some(hint)) => hint.description.clone(),
        (true, None) => "an unnamed adapter".to_owned(),
    };
    if software && options.backend == BackendChoice::Auto {
        return Err((Refusal::SoftwareAdapter { adapter: adapter.clone() }, Some(adapter)));
    }
    Ok(adapter)
}

/// The input types the GPU engine takes (i64 values must fit in i32: checked per run).
const GPU_INPUTS: [DType; 4] = [DType::F32, DType::I64, DType::I32, DType::Bool];

/// Every input of a type the GPU engine takes, with every dim fixed.
pub(crate) fn check_inputs(model: &Model) -> std::result::Result<(), Refusal> {
    for input in model.inputs() {
        if !input.dtype.is_some_and(|d| GPU_INPUTS.contains(&d)) {
            return Err(Refusal::UnsupportedDType { tensor: input.name.clone(), dtype: input.type_name.clone() });
        }
        fixed_shape(input)?;
    }
    Ok(())
}

/// The input's shape when every dim is fixed.
pub(crate) fn fixed_shape(input: &ValueInfo) -> std::result::Result<Vec<usize>, Refusal> {
    let Some(dims) = &input.shape else {
        return Err(Refusal::FreeDim { input: input.name.clone(), dim: "(rank)".to_owned() });
    };
    dims.iter()
        .map(|d| match d {
            Dim::Fixed(v) => Ok(*v as usize),
            Dim::Symbolic(name) => Err(Refusal::FreeDim { input: input.name.clone(), dim: name.clone() }),
            Dim::Unknown => Err(Refusal::FreeDim { input: input.name.clone(), dim: "?".to_owned() }),
        })
        .collect()
}

/// Runs both engines on the same deterministic input; any output outside tolerance refuses the GPU.
async fn probe<E: Candidate>(
    model: &Model,
    reference: &CpuEngine,
    engine: &E,
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

/// Deterministic inputs: floats in [-1, 1), integers 0 or 1 (an index valid on any axis of two
/// or more, e.g. a segment id, and a realistic attention mask). [`check_inputs`] has checked their
/// types and fixed shapes.
fn probe_inputs(model: &Model) -> std::result::Result<Vec<Tensor>, Refusal> {
    let inputs = crate::synthetic_inputs(model.inputs(), &Default::default(), PROBE_SEED)
        .map_err(|e| Refusal::Failed { message: format!("probe input: {e}") })?;
    inputs
        .into_iter()
        .map(|(_, tensor)| {
            let data = match tensor.data() {
                TensorData::I64(v) => TensorData::I64(v.iter().map(|x| x % 2).collect()),
                TensorData::I32(v) => TensorData::I32(v.iter().map(|x| x % 2).collect()),
                _ => return Ok(tensor),
            };
            Tensor::from_data(tensor.shape(), data)
                .map_err(|e| Refusal::Failed { message: format!("probe input: {e}") })
        })
        .collect()
}
