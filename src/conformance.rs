//! `sextant conformance`: ONNX backend test cases on every engine.
//!
//! A case is a folder holding `model.onnx` and `test_data_set_*/{input,output}_N.pb`. Each case runs
//! on each engine and gets a verdict: pass, wrong (outside the tolerance, by default 1e-4 abs or rel),
//! refused (the engine or the runtime declined, with the reason), or error (the run failed after the
//! session was built). Wrong results and panics are the failures; the exit status is 1 if any occurred.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use runtime::{
    BackendChoice, Engine, Model, Session, SessionOptions, Tensor, Tolerance, compare, free_dims_of, onnx_pb,
};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folders to search for cases (recursively).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Engines to run: cpu, gpu, or all.
    #[arg(long, value_enum, default_value = "all")]
    engines: Engines,
    /// Absolute tolerance: a value passes within ATOL of the expected value, or within RTOL of it.
    #[arg(long, default_value_t = Tolerance::default().abs)]
    atol: f64,
    /// Relative tolerance (see --atol).
    #[arg(long, default_value_t = Tolerance::default().rel)]
    rtol: f64,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Engines {
    Cpu,
    Gpu,
    All,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
enum Verdict {
    Pass { max_abs: f64, max_rel: f64 },
    Wrong { detail: String },
    Refused { reason: String },
    Error { detail: String },
    Panicked { detail: String },
}

#[derive(Debug, Serialize)]
struct Outcome {
    case: String,
    engine: Engine,
    #[serde(flatten)]
    verdict: Verdict,
}

pub fn main(args: Args) -> Result<ExitCode> {
    let mut cases = Vec::new();
    for dir in &args.dirs {
        find_cases(dir, &mut cases).with_context(|| format!("while searching {}", dir.display()))?;
    }
    cases.sort();
    let engines: &[Engine] = match args.engines {
        Engines::Cpu => &[Engine::Cpu],
        Engines::Gpu => &[Engine::Gpu],
        Engines::All => &[Engine::Cpu, Engine::Gpu],
    };
    let tolerance = Tolerance { abs: args.atol, rel: args.rtol };
    let mut outcomes = Vec::new();
    for case in &cases {
        let name = args
            .dirs
            .iter()
            .find_map(|d| case.strip_prefix(d).ok())
            .filter(|relative| !relative.as_os_str().is_empty())
            .or_else(|| case.file_name().map(Path::new))
            .unwrap_or(case)
            .display()
            .to_string();
        for &engine in engines {
            let verdict = match catch_unwind(AssertUnwindSafe(|| run_case(case, engine, tolerance))) {
                Ok(verdict) => verdict,
                Err(_) => Verdict::Panicked { detail: "see the panic message above".to_owned() },
            };
            if !args.json {
                println!("{engine} {name}: {}", describe(&verdict));
            }
            outcomes.push(Outcome { case: name.clone(), engine, verdict });
        }
    }
    let failed = outcomes.iter().any(|o| matches!(o.verdict, Verdict::Wrong { .. } | Verdict::Panicked { .. }));
    let summary: serde_json::Map<String, serde_json::Value> = engines
        .iter()
        .map(|&engine| {
            let count =
                |f: fn(&Verdict) -> bool| outcomes.iter().filter(|o| o.engine == engine && f(&o.verdict)).count();
            let counts = json!({
                "pass": count(|v| matches!(v, Verdict::Pass { .. })),
                "wrong": count(|v| matches!(v, Verdict::Wrong { .. })),
                "refused": count(|v| matches!(v, Verdict::Refused { .. })),
                "error": count(|v| matches!(v, Verdict::Error { .. })),
                "panicked": count(|v| matches!(v, Verdict::Panicked { .. })),
            });
            (engine.to_string(), counts)
        })
        .collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "cases": cases.len(), "summary": summary, "outcomes": outcomes }))?
        );
    } else {
        for (engine, counts) in &summary {
            println!("{engine}: {counts}");
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn describe(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Pass { max_abs, max_rel } => {
            format!("pass (max abs error {max_abs:.2e}, max rel error {max_rel:.2e})")
        }
        Verdict::Wrong { detail } => format!("WRONG: {detail}"),
        Verdict::Refused { reason } => format!("refused: {reason}"),
        Verdict::Error { detail } => format!("error: {detail}"),
        Verdict::Panicked { detail } => format!("PANICKED: {detail}"),
    }
}

fn find_cases(dir: &Path, cases: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join("model.onnx").is_file() {
        cases.push(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            find_cases(&path, cases)?;
        }
    }
    Ok(())
}

/// Files named `{prefix}_N.pb`, in numeric order of N.
fn numbered(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let stem = p.file_name()?.to_str()?.strip_suffix(".pb")?.strip_prefix(prefix)?.strip_prefix('_')?;
            Some((stem.parse().ok()?, p))
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

fn run_case(case: &Path, engine: Engine, tolerance: Tolerance) -> Verdict {
    let model = match std::fs::read(case.join("model.onnx"))
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(Model::from_bytes(&b)?))
    {
        Ok(model) => model,
        Err(e) => return Verdict::Refused { reason: format!("{e:#}") },
    };
    let mut sets: Vec<PathBuf> = match std::fs::read_dir(case) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("test_data_set_")))
            .collect(),
        Err(e) => return Verdict::Error { detail: e.to_string() },
    };
    sets.sort();
    let (mut max_abs, mut max_rel) = (0f64, 0f64);
    for set in &sets {
        let TestSet { inputs, expected } = match read_set(&model, set) {
            Ok(data) => data,
            Err(e) => return Verdict::Refused { reason: format!("{e:#}") },
        };
        let backend = match engine {
            Engine::Cpu => BackendChoice::Cpu,
            Engine::Gpu => BackendChoice::Gpu,
        };
        let options = SessionOptions { backend, dims: free_dims_of(model.inputs(), &inputs), ..Default::default() };
        let session = match pollster::block_on(Session::new(&model, &options)) {
            Ok(session) => session,
            Err(e) => return Verdict::Refused { reason: e.to_string() },
        };
        let actual = match pollster::block_on(session.run(inputs)) {
            Ok(outputs) => outputs,
            Err(e) => return Verdict::Error { detail: e.to_string() },
        };
        if actual.len() != expected.len() {
            return Verdict::Wrong { detail: format!("{} outputs, expected {}", actual.len(), expected.len()) };
        }
        for ((name, actual), expected) in actual.iter().zip(&expected) {
            let comparison = compare(actual, expected, tolerance);
            if !comparison.passed() {
                return Verdict::Wrong { detail: format!("output `{name}`: {}", comparison.summary()) };
            }
            max_abs = max_abs.max(comparison.max_abs);
            max_rel = max_rel.max(comparison.max_rel);
        }
    }
    Verdict::Pass { max_abs, max_rel }
}

/// Inputs bound by the name in each `.pb` when the model has such an input, else in graph order.
/// One `test_data_set_*` folder: named inputs and the expected outputs, in order.
struct TestSet {
    inputs: Vec<(String, Tensor)>,
    expected: Vec<Tensor>,
}

fn read_set(model: &Model, set: &Path) -> Result<TestSet> {
    let mut positional = model.inputs().iter().map(|i| i.name.clone());
    let mut inputs = Vec::new();
    for path in numbered(set, "input")? {
        let bytes = std::fs::read(&path)?;
        let named = onnx_pb::name(&bytes)?;
        let name = if model.inputs().iter().any(|i| i.name == named) {
            positional.next();
            named
        } else {
            positional.next().unwrap_or(named)
        };
        inputs.push((name, onnx_pb::decode(&bytes).with_context(|| format!("input {}", path.display()))?));
    }
    let expected = numbered(set, "output")?
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path)?;
            onnx_pb::decode(&bytes).with_context(|| format!("expected output {}", path.display()))
        })
        .collect::<Result<_>>()?;
    Ok(TestSet { inputs, expected })
}
