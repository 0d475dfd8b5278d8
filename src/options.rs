//! Flags several subcommands share, and turning them into session options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use runtime::{BackendChoice, Engine, EngineReport, Model, SessionOptions};
use serde_json::json;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Backend {
    Auto,
    Gpu,
    Cpu,
}

impl From<Backend> for BackendChoice {
    fn from(backend: Backend) -> Self {
        match backend {
            Backend::Auto => BackendChoice::Auto,
            Backend::Gpu => BackendChoice::Gpu,
            Backend::Cpu => BackendChoice::Cpu,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// Engine: auto (a hardware GPU where the gate passes, else the CPU), gpu (the GPU engine, any
    /// adapter), or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// Fix a free dim, e.g. `--dim N=8` (as onnxruntime's freeDimensionOverrides).
    #[arg(long = "dim", value_name = "NAME=VALUE", value_parser = parse_dim)]
    pub dims: Vec<(String, u64)>,
    /// Skip the GPU probe run against the CPU engine (lets unproven GPU results out).
    #[arg(long)]
    pub no_gpu_probe: bool,
}

impl SessionArgs {
    /// Session options; free dims not fixed by `--dim` take their values from `fallback_dims`.
    pub fn options(&self, backend: BackendChoice, fallback_dims: BTreeMap<String, u64>) -> SessionOptions {
        let mut dims = fallback_dims;
        dims.extend(self.dims.iter().cloned());
        SessionOptions { backend, dims, gpu_probe: !self.no_gpu_probe, ..SessionOptions::default() }
    }
}

fn parse_dim(text: &str) -> Result<(String, u64)> {
    let Some((name, value)) = text.split_once('=') else { bail!("expected NAME=VALUE, got `{text}`") };
    let value =
        value.trim().parse().with_context(|| format!("dim `{name}`: `{value}` is not a non-negative integer"))?;
    Ok((name.trim().to_owned(), value))
}

pub fn load_model(path: &Path) -> Result<Model> {
    let bytes = std::fs::read(path).with_context(|| format!("while reading model {}", path.display()))?;
    Model::from_bytes(&bytes).with_context(|| format!("while loading model {}", path.display()))
}

/// A model and the files to feed it, as `run`, `bench` and `check` take them.
#[derive(Debug, clap::Args)]
pub struct ModelInputs {
    /// The ONNX model.
    pub model: PathBuf,
    /// An input as .npy or ONNX TensorProto .pb; without NAME= inputs bind in graph order.
    /// (`bench` and `check` make deterministic synthetic inputs when none is given.)
    #[arg(long = "input", value_name = "[NAME=]PATH", value_parser = parse_input)]
    pub inputs: Vec<InputArg>,
}

/// A `[NAME=]PATH` input argument.
#[derive(Debug, Clone)]
pub struct InputArg {
    pub name: Option<String>,
    pub path: PathBuf,
}

pub fn parse_input(text: &str) -> Result<InputArg> {
    // A path may itself contain `=`; only a prefix without path separators counts as a name.
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !name.contains(['/', '\\']) => {
            Ok(InputArg { name: Some(name.to_owned()), path: PathBuf::from(path) })
        }
        _ => Ok(InputArg { name: None, path: PathBuf::from(text) }),
    }
}

/// One line saying which engine runs and why others were refused.
pub fn engine_line(report: &EngineReport) -> String {
    let mut line = format!("engine: {}", report.engine);
    if let Some(adapter) = report.adapter.as_ref().filter(|_| report.engine != Engine::Cpu) {
        line += &format!(" on {adapter}");
    }
    for (engine, reason) in &report.refused {
        line += &format!(" ({engine} refused: {reason})");
    }
    line
}

/// The report as JSON, with each refusal's reason spelled out.
pub fn report_json(report: &EngineReport) -> serde_json::Value {
    let refused: Vec<_> = report
        .refused
        .iter()
        .map(|(engine, reason)| json!({ "engine": engine, "reason": reason.to_string(), "detail": reason }))
        .collect();
    let probe = report
        .probe
        .as_ref()
        .map(|p| p.iter().map(|(name, c)| json!({ "output": name, "comparison": c })).collect::<Vec<_>>());
    json!({ "engine": report.engine, "adapter": report.adapter, "refused": refused, "probe": probe })
}
