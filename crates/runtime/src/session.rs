//! One [`Session`] over whichever engine is proven right for the model.

use std::collections::BTreeMap;

use crate::backend::{Backend, Engine, EngineReport, Refusal};
use crate::compare::Tolerance;
use crate::cpu::CpuEngine;
use crate::model::{Dim, Model, ValueInfo};
use crate::{Error, Result, Tensor};

/// Which engine a session may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU where the gate passes and the adapter is hardware, else the CPU.
    #[default]
    Auto,
    /// The GPU or an error saying why not.
    Gpu,
    Cpu,
}

/// How to build a [`Session`].
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub backend: BackendChoice,
    /// Values for free dims, by name (as onnxruntime's `freeDimensionOverrides`).
    pub dims: BTreeMap<String, u64>,
    /// Run the GPU engine once at creation and compare with the CPU engine. Turning it off lets
    /// unproven GPU results out; only the engine's op table then stands between the caller and it.
    pub gpu_probe: bool,
    /// How close the GPU probe must come to the CPU engine.
    pub probe_tolerance: Tolerance,
    /// What the caller knows of the GPU adapter where the graphics API says too little: the
    /// browser package reads `GPUAdapter.info` (vendor, architecture, SwiftShader's name) itself.
    /// Its description replaces an adapter name wgpu left empty; its `software` always counts.
    pub adapter_hint: Option<AdapterHint>,
}

/// A GPU adapter as the caller sees it (see [`SessionOptions::adapter_hint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterHint {
    /// e.g. `google swiftshader (WebGPU)`.
    pub description: String,
    /// A software rasteriser: `Auto` passes over it.
    pub software: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            backend: BackendChoice::Auto,
            dims: BTreeMap::new(),
            gpu_probe: true,
            probe_tolerance: Tolerance::default(),
            adapter_hint: None,
        }
    }
}

/// A model ready to run on one engine.
pub struct Session {
    backend: Box<dyn Backend>,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    report: EngineReport,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("engine", &self.report.engine).field("inputs", &self.inputs).finish()
    }
}

impl Session {
    /// Builds a session, choosing the engine as `options.backend` says and recording why.
    pub async fn new(model: &Model, options: &SessionOptions) -> Result<Session> {
        let model = model.with_dims(&options.dims)?;
        // The CPU engine is the answer for `Cpu`, the GPU probe's reference, and the fallback.
        let cpu = CpuEngine::new(&model);
        let cpu_refused = |reason| Error::EngineRefused { engine: Engine::Cpu, reason };
        let (backend, report): (Box<dyn Backend>, EngineReport) = match options.backend {
            BackendChoice::Cpu => (Box::new(cpu.map_err(cpu_refused)?), cpu_report(Vec::new(), None)),
            choice => match gpu_session(&model, cpu.as_ref(), options).await {
                Ok(gpu) => gpu,
                Err((reason, _)) if choice != BackendChoice::Auto => {
                    return Err(Error::EngineRefused { engine: Engine::Gpu, reason });
                }
                Err((reason, adapter)) => {
                    (Box::new(cpu.map_err(cpu_refused)?), cpu_report(vec![(Engine::Gpu, reason)], adapter))
                }
            },
        };
        Ok(Session { backend, inputs: model.inputs().to_vec(), outputs: model.outputs().to_vec(), report })
    }

    /// The engine this session runs on.
    pub fn engine(&self) -> Engine {
        self.report.engine
    }

    /// Which engine runs, on what adapter, and why any other was refused.
    pub fn report(&self) -> &EngineReport {
        &self.report
    }

    /// The inputs, with dim overrides applied.
    pub fn inputs(&self) -> &[ValueInfo] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[ValueInfo] {
        &self.outputs
    }

    /// Runs the model. Inputs are matched by name and checked against the signature; outputs come
    /// back in the model's output order, each with its shape.
    pub async fn run(&self, inputs: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>> {
        let inputs = check_inputs(&self.inputs, inputs)?;
        let outputs = self.backend.run(inputs).await?;
        Ok(self.outputs.iter().map(|o| o.name.clone()).zip(outputs).collect())
    }
}

fn cpu_report(refused: Vec<(Engine, Refusal)>, adapter: Option<String>) -> EngineReport {
    EngineReport { engine: Engine::Cpu, adapter, refused, probe: None }
}

type GpuAttempt = std::result::Result<(Box<dyn Backend>, EngineReport), (Refusal, Option<String>)>;

#[cfg(feature = "gpu")]
async fn gpu_session(model: &Model, reference: Result<&CpuEngine, &Refusal>, options: &SessionOptions) -> GpuAttempt {
    let opened = crate::gpu::open(model, options).await?;
    let gated = crate::gate::prove(model, opened, reference, options).await?;
    let report =
        EngineReport { engine: Engine::Gpu, adapter: Some(gated.adapter), refused: Vec::new(), probe: gated.probe };
    Ok((Box::new(gated.engine), report))
}

#[cfg(not(feature = "gpu"))]
async fn gpu_session(_: &Model, _: Result<&CpuEngine, &Refusal>, _: &SessionOptions) -> GpuAttempt {
    Err((Refusal::NotBuilt, None))
}

/// Orders `inputs` as the signature does and checks names, dtypes, ranks and dims; a free dim
/// must take the same value everywhere it appears in one run.
fn check_inputs(expected: &[ValueInfo], inputs: Vec<(String, Tensor)>) -> Result<Vec<Tensor>> {
    let names = || expected.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    // Models have a handful of inputs: positions and linear scans beat hashing on every run.
    let mut slots: Vec<Option<Tensor>> = expected.iter().map(|_| None).collect();
    for (name, tensor) in inputs {
        let Some(ix) = expected.iter().position(|i| i.name == name) else {
            return Err(Error::UnexpectedInput { name, expected: names() });
        };
        slots[ix] = Some(tensor);
    }
    let mut bound: Vec<(&str, usize)> = Vec::new();
    let mut ordered = Vec::with_capacity(expected.len());
    for (info, slot) in expected.iter().zip(slots) {
        let tensor = slot.ok_or_else(|| Error::MissingInput { name: info.name.clone(), expected: names() })?;
        if let Some(dtype) = info.dtype
            && dtype != tensor.dtype()
        {
            return Err(Error::InputDType { name: info.name.clone(), expected: dtype, actual: tensor.dtype() });
        }
        if let Some(dims) = &info.shape {
            if dims.len() != tensor.shape().len() {
                return Err(Error::InputRank {
                    name: info.name.clone(),
                    expected: dims.len(),
                    shape: info.shape_text(),
                    actual: tensor.shape().to_vec(),
                });
            }
            for (axis, (dim, &actual)) in dims.iter().zip(tensor.shape()).enumerate() {
                let expected = match dim {
                    Dim::Fixed(v) => Some(*v as usize),
                    Dim::Symbolic(name) => match bound.iter().find(|(n, _)| n == name) {
                        Some(&(_, value)) => Some(value),
                        None => {
                            bound.push((name.as_str(), actual));
                            Some(actual)
                        }
                    },
                    Dim::Unknown => None,
                };
                if let Some(want) = expected
                    && want != actual
                {
                    let expected = match dim {
                        Dim::Symbolic(name) => format!("{want} (free dim `{name}`, bound by an earlier input)"),
                        _ => want.to_string(),
                    };
                    return Err(Error::InputDim {
                        name: info.name.clone(),
                        axis,
                        expected,
                        shape: info.shape_text(),
                        actual: tensor.shape().to_vec(),
                    });
                }
            }
        }
        ordered.push(tensor);
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    fn info(name: &str, dtype: DType, shape: Vec<Dim>) -> ValueInfo {
        ValueInfo { name: name.to_owned(), dtype: Some(dtype), type_name: dtype.to_string(), shape: Some(shape) }
    }

    fn check(inputs: Vec<(&str, Tensor)>, expected_error: &str) {
        let signature = [
            info("x", DType::F32, vec![Dim::Symbolic("N".into()), Dim::Fixed(2)]),
            info("y", DType::I64, vec![Dim::Symbolic("N".into())]),
        ];
        let inputs = inputs.into_iter().map(|(n, t)| (n.to_owned(), t)).collect();
        let result = check_inputs(&signature, inputs);
        match result {
            Ok(_) => assert_eq!("", expected_error),
            Err(e) => assert_eq!(e.to_string(), expected_error),
        }
    }

    fn f32s(shape: &[usize]) -> Tensor {
        Tensor::new(shape, vec![0f32; shape.iter().product()]).unwrap()
    }

    fn i64s(shape: &[usize]) -> Tensor {
        Tensor::new(shape, vec![0i64; shape.iter().product()]).unwrap()
    }

    #[test]
    fn input_checks_name_expected_and_actual() {
        check(vec![("x", f32s(&[3, 2])), ("y", i64s(&[3]))], "");
        check(vec![("x", f32s(&[3, 2]))], r#"missing input `y`; the model expects ["x", "y"]"#);
        check(
            vec![("x", f32s(&[3, 2])), ("y", i64s(&[3])), ("z", i64s(&[3]))],
            r#"unexpected input `z`; the model expects ["x", "y"]"#,
        );
        check(vec![("x", i64s(&[3, 2])), ("y", i64s(&[3]))], "input `x`: expected dtype f32, got i64");
        check(vec![("x", f32s(&[6])), ("y", i64s(&[3]))], "input `x`: expected rank 2 (shape [N, 2]), got shape [6]");
        check(
            vec![("x", f32s(&[3, 3])), ("y", i64s(&[3]))],
            "input `x`: expected dim 1 to be 2 (shape [N, 2]), got shape [3, 3]",
        );
        check(
            vec![("x", f32s(&[3, 2])), ("y", i64s(&[4]))],
            "input `y`: expected dim 0 to be 3 (free dim `N`, bound by an earlier input) (shape [N]), got shape [4]",
        );
    }
}
